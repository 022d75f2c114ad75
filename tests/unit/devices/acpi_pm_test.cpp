#include "vmm/devices/acpi_pm.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using test::FakeInterruptLine;
using test::FakeStopSink;
using test::read8;
using test::read_n;
using test::write8;
using test::write_n;

constexpr uint64_t STS = AcpiPm::kStatusOffset, EN = AcpiPm::kEnableOffset, CNT = AcpiPm::kControlOffset,
                   TMR = AcpiPm::kTimerOffset;
constexpr uint16_t SLP_EN = 1 << 13, PWRBTN = 1 << 8;
constexpr uint16_t slp_typ(unsigned t) { return uint16_t(t << 10); }

struct Pm {
    FakeStopSink stop;
    FakeInterruptLine sci;
    AcpiPm dev{stop, sci};
};

TEST(AcpiPm, RegisterMapMatchesLayout) {
    EXPECT_EQ(AcpiPm::kBase, uint64_t(VIREO_ACPI_PM1A_EVT));
    EXPECT_EQ(AcpiPm::kBase + CNT, uint64_t(VIREO_ACPI_PM1A_CNT));
    EXPECT_EQ(AcpiPm::kBase + TMR, uint64_t(VIREO_ACPI_PM_TMR));
    EXPECT_EQ(AcpiPm::kWindowSize, 12u);
}

TEST(AcpiPm, S5PowersOff) {
    Pm p;
    // ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN.
    write_n(p.dev, CNT, slp_typ(VIREO_ACPI_S5_TYPE) | 1, 2);
    EXPECT_TRUE(p.stop.requests().empty());
    write_n(p.dev, CNT, slp_typ(VIREO_ACPI_S5_TYPE) | SLP_EN | 1, 2);
    auto r = p.stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::PowerOff);
}

TEST(AcpiPm, S5ByteWriteToTheHighByte) {
    Pm p;
    write8(p.dev, CNT + 1, uint8_t((slp_typ(VIREO_ACPI_S5_TYPE) | SLP_EN) >> 8));
    ASSERT_EQ(p.stop.requests().size(), 1u);
    EXPECT_EQ(p.stop.requests()[0].reason, StopReason::PowerOff);
}

TEST(AcpiPm, OtherSleepTypesAreIgnored) {
    Pm p;
    for (unsigned t = 0; t < 8; ++t) {
        if (t == VIREO_ACPI_S5_TYPE) continue;
        write_n(p.dev, CNT, slp_typ(t) | SLP_EN, 2);
    }
    EXPECT_TRUE(p.stop.requests().empty());
    EXPECT_EQ(p.dev.ignored_sleep_requests(), 7u);
}

TEST(AcpiPm, ControlReadsSciEnAndNeverSlpEn) {
    Pm p;
    EXPECT_EQ(read_n(p.dev, CNT, 2), 1u);
    write_n(p.dev, CNT, slp_typ(1) | 0x0004, 2);  // SCI_EN cleared by the guest: still 1
    EXPECT_EQ(read_n(p.dev, CNT, 2), slp_typ(1) | 0x0005u);
    write_n(p.dev, CNT, slp_typ(1) | SLP_EN, 2);
    EXPECT_EQ(read_n(p.dev, CNT, 2) & SLP_EN, 0u);
}

TEST(AcpiPm, PmTimerIsMonotonicAt3579545Hz) {
    Pm p;
    uint32_t prev = uint32_t(read_n(p.dev, TMR, 4));
    uint64_t total = 0;
    for (int i = 0; i < 10000; ++i) {
        uint32_t now = uint32_t(read_n(p.dev, TMR, 4));
        EXPECT_EQ(now & 0xff000000u, 0u);  // 24-bit timer
        total += (now - prev) & 0xffffff;  // wraps every ~4.7 s
        prev = now;
    }
    auto t0 = std::chrono::steady_clock::now();
    uint32_t a = uint32_t(read_n(p.dev, TMR, 4));
    std::this_thread::sleep_for(100ms);
    uint32_t b = uint32_t(read_n(p.dev, TMR, 4));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double ticks = double((b - a) & 0xffffff);
    EXPECT_NEAR(ticks / secs, 3579545.0, 3579545.0 * 0.05);
    // Byte reads are parts of a timer value too.
    EXPECT_EQ(read8(p.dev, TMR + 3), 0);
}

TEST(AcpiPm, PowerButtonRaisesSciOnlyWhenEnabled) {
    Pm p;
    EXPECT_FALSE(p.dev.press_power_button());
    EXPECT_EQ(read_n(p.dev, STS, 2) & PWRBTN, PWRBTN);
    EXPECT_FALSE(p.sci.level());
    EXPECT_EQ(p.sci.changes(), 0u);
    write_n(p.dev, STS, PWRBTN, 2);  // the guest clears the stale event
    EXPECT_EQ(read_n(p.dev, STS, 2) & PWRBTN, 0u);

    write_n(p.dev, EN, PWRBTN, 2);
    EXPECT_TRUE(p.dev.power_button_enabled());
    EXPECT_FALSE(p.sci.level());
    EXPECT_TRUE(p.dev.press_power_button());
    EXPECT_TRUE(p.sci.level());
    write_n(p.dev, STS, 0, 2);  // writing 0 clears nothing
    EXPECT_TRUE(p.sci.level());
    write8(p.dev, STS + 1, PWRBTN >> 8);  // write 1 to clear, byte-wide
    EXPECT_FALSE(p.sci.level());
    EXPECT_EQ(p.sci.levels(), (std::vector<bool>{true, false}));
}

TEST(AcpiPm, EnablingAPendingEventRaisesSci) {
    Pm p;
    p.dev.press_power_button();
    write_n(p.dev, EN, PWRBTN, 2);
    EXPECT_TRUE(p.sci.level());
    write_n(p.dev, EN, 0, 2);
    EXPECT_FALSE(p.sci.level());
}

TEST(AcpiPm, AnyAccessIsSafe) {
    Pm p;
    write_n(p.dev, TMR, 0, 4);  // read-only
    EXPECT_EQ(read_n(p.dev, 6, 2), 0u);
    EXPECT_EQ(read_n(p.dev, 11, 4), 0xffffff00u | read8(p.dev, 11));
    EXPECT_EQ(read_n(p.dev, 500, 8), ~uint64_t{0});
    write_n(p.dev, 500, ~uint64_t{0}, 8);
    write_n(p.dev, ~uint64_t{0}, ~uint64_t{0}, 8);
    // A 64-bit write over the whole block: clears status, sets enables, S5.
    write_n(p.dev, 0, 0x0000'3400'ffff'ffffull, 8);
    EXPECT_EQ(read_n(p.dev, EN, 2), 0xffffu);
    ASSERT_EQ(p.stop.requests().size(), 1u);
    EXPECT_EQ(p.stop.requests()[0].reason, StopReason::PowerOff);
}

}  // namespace
}  // namespace vireo
