#include "vmm/devices/pvpanic.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using test::FakeStopSink;
using test::read8;
using test::read_n;
using test::write8;

TEST(Pvpanic, ReadReturnsSupportedEvents) {
    FakeStopSink stop;
    Pvpanic dev(stop);
    EXPECT_EQ(read8(dev, 0), 0x03);
    EXPECT_EQ(read_n(dev, 0, 4), 0x03u);  // the rest of a wider read is zeros
}

TEST(Pvpanic, PanickedStopsTheVm) {
    FakeStopSink stop;
    Pvpanic dev(stop);
    write8(dev, 0, 0x01);
    auto r = stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::Panic);
    EXPECT_EQ(r[0].detail, "pvpanic: guest panicked");
}

TEST(Pvpanic, CrashLoadedOnlyLogs) {
    FakeStopSink stop;
    Pvpanic dev(stop);
    write8(dev, 0, 0x02);
    write8(dev, 0, 0x02);
    EXPECT_TRUE(stop.requests().empty());
    EXPECT_EQ(dev.crash_loaded_count(), 2u);
}

TEST(Pvpanic, UnknownBitsAndOffsetsAreIgnored) {
    FakeStopSink stop;
    Pvpanic dev(stop);
    write8(dev, 0, 0xfc);
    write8(dev, 1, 0x01);
    dev.write(0, std::span<const uint8_t>());
    EXPECT_TRUE(stop.requests().empty());
    EXPECT_EQ(read8(dev, 5), 0);
}

}  // namespace
}  // namespace vireo
