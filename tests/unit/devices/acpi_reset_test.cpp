#include "vmm/devices/acpi_reset.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using test::FakeStopSink;
using test::read8;
using test::write8;

TEST(AcpiResetRegister, ResetValueRequestsReset) {
    FakeStopSink stop;
    AcpiResetRegister dev(stop);
    write8(dev, 0, AcpiResetRegister::kResetValue);
    auto r = stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::Reset);
}

TEST(AcpiResetRegister, AnyWriteWithRstCpuResets) {
    FakeStopSink stop;
    AcpiResetRegister dev(stop);
    write8(dev, 0, 0x04);
    EXPECT_EQ(stop.requests().size(), 1u);
}

TEST(AcpiResetRegister, OtherBitsAreKeptWithoutReset) {
    FakeStopSink stop;
    AcpiResetRegister dev(stop);
    write8(dev, 0, 0x02);  // SYS_RST alone selects the kind of reset, starts none
    EXPECT_TRUE(stop.requests().empty());
    EXPECT_EQ(read8(dev, 0), 0x02);
    write8(dev, 1, 0x04);  // not our port
    EXPECT_TRUE(stop.requests().empty());
    EXPECT_EQ(read8(dev, 1), 0xff);
}

}  // namespace
}  // namespace vireo
