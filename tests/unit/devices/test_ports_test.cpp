#include "vmm/devices/test_ports.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using test::FakeStopSink;
using test::read_n;
using test::write8;
using test::write_n;

TEST(TestPorts, WindowCoversTheThreePorts) {
    EXPECT_EQ(TestPorts::kBase, 0x510u);
    EXPECT_EQ(TestPorts::kWindowSize, 12u);
    EXPECT_EQ(TestPorts::kIdleOffset, 0u);
    EXPECT_EQ(TestPorts::kTestExitOffset, 4u);
    EXPECT_EQ(TestPorts::kNullOffset, 8u);
}

TEST(TestPorts, TestExitStopsWithTheLowByte) {
    for (uint32_t value : {0u, 1u, 42u, 255u, 0x1234u}) {
        FakeStopSink stop;
        TestPorts dev(stop);
        write_n(dev, TestPorts::kTestExitOffset, value, 4);
        auto r = stop.requests();
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].reason, StopReason::TestExit);
        EXPECT_EQ(r[0].code, int(value & 0xff));
    }
}

TEST(TestPorts, NullWritesAreCounted) {
    FakeStopSink stop;
    TestPorts dev(stop);
    for (int i = 0; i < 1000; ++i) write_n(dev, TestPorts::kNullOffset, uint64_t(i), 4);
    write8(dev, TestPorts::kNullOffset, 1);
    EXPECT_EQ(dev.null_writes(), 1001u);
    EXPECT_TRUE(stop.requests().empty());
}

TEST(TestPorts, IdleSleepsForTheRequestedTime) {
    FakeStopSink stop;
    TestPorts dev(stop);
    auto t0 = std::chrono::steady_clock::now();
    write_n(dev, TestPorts::kIdleOffset, 20000, 4);  // 20 ms
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 20ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(dev.idle_waits(), 1u);
}

TEST(TestPorts, IdleWakesEarlyWhenTheVmStops) {
    FakeStopSink stop;
    TestPorts dev(stop);
    auto t0 = std::chrono::steady_clock::now();
    std::thread stopper([&] {
        std::this_thread::sleep_for(30ms);
        stop.request_stop({StopReason::Operator, 0, "test"});
    });
    write_n(dev, TestPorts::kIdleOffset, 60'000'000, 4);  // a minute
    auto took = std::chrono::steady_clock::now() - t0;
    stopper.join();
    EXPECT_LT(took, 10s);
    // Once stopped, idling returns at once, even for the longest idle.
    t0 = std::chrono::steady_clock::now();
    write_n(dev, TestPorts::kIdleOffset, 0xffffffffffffffffull, 8);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(TestPorts, OtherOffsetsAreIgnoredAndReadsAreZero) {
    FakeStopSink stop;
    TestPorts dev(stop);
    for (uint64_t off : {1u, 2u, 3u, 5u, 7u, 9u, 11u, 100u}) write_n(dev, off, 0xff, 4);
    EXPECT_TRUE(stop.requests().empty());
    EXPECT_EQ(dev.ignored_writes(), 8u);
    EXPECT_EQ(dev.null_writes(), 0u);
    EXPECT_EQ(read_n(dev, 0, 4), 0u);
    EXPECT_EQ(read_n(dev, 4, 8), 0u);
}

}  // namespace
}  // namespace vireo
