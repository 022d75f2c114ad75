#include "vmm/devices/boot_marker.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using test::read_n;
using test::write8;
using test::write_n;

TEST(BootMarker, RecordsTimeSinceStartOn123) {
    auto start = std::chrono::steady_clock::now() - 1500ms;
    BootMarker dev(start);
    EXPECT_FALSE(dev.boot_complete_us().has_value());
    write8(dev, 0, 123);
    auto us = dev.boot_complete_us();
    ASSERT_TRUE(us.has_value());
    EXPECT_GE(*us, 1500000u);
    EXPECT_LT(*us, 60000000u);
    EXPECT_EQ(dev.ignored_writes(), 0u);
}

TEST(BootMarker, OtherValuesAreIgnoredAndCounted) {
    BootMarker dev(std::chrono::steady_clock::now());
    write8(dev, 0, 122);
    write8(dev, 0, 0);
    write8(dev, 1, 123);           // not the marker byte
    write_n(dev, 0, 123 + 256, 2); // 16-bit value is not 123
    EXPECT_FALSE(dev.boot_complete_us().has_value());
    EXPECT_EQ(dev.ignored_writes(), 4u);
}

TEST(BootMarker, WideWriteOf123CountsAndOnlyTheFirstIsKept) {
    BootMarker dev(std::chrono::steady_clock::now());
    write_n(dev, 0, 123, 4);  // busybox devmem's default width is 32 bits
    auto first = dev.boot_complete_us();
    ASSERT_TRUE(first.has_value());
    std::this_thread::sleep_for(2ms);
    write8(dev, 0, 123);
    EXPECT_EQ(dev.boot_complete_us(), first);
    EXPECT_EQ(dev.ignored_writes(), 1u);
    EXPECT_EQ(read_n(dev, 0, 8), 0u);
}

}  // namespace
}  // namespace vireo
