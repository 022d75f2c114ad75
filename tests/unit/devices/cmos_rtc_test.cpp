#include "vmm/devices/cmos_rtc.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using test::read8;
using test::read_n;
using test::write8;
using test::write_n;

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

uint8_t cmos(CmosRtc& rtc, uint8_t index) {
    write8(rtc, 0, index);
    return read8(rtc, 1);
}
void cmos_write(CmosRtc& rtc, uint8_t index, uint8_t value) {
    write8(rtc, 0, index);
    write8(rtc, 1, value);
}
int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

struct FixedClock {
    system_clock::time_point now = sys_days{2024y / February / 29} + 13h + 45min + 7s + 300ms;
    CmosRtc::WallClock fn() {
        return [this] { return now; };
    }
};

TEST(CmosRtc, BcdTimeMatchesTheClock) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    EXPECT_EQ(cmos(rtc, 0x00), 0x07);
    EXPECT_EQ(cmos(rtc, 0x02), 0x45);
    EXPECT_EQ(cmos(rtc, 0x04), 0x13);
    EXPECT_EQ(cmos(rtc, 0x06), 5);  // Thursday (1 = Sunday)
    EXPECT_EQ(cmos(rtc, 0x07), 0x29);
    EXPECT_EQ(cmos(rtc, 0x08), 0x02);
    EXPECT_EQ(cmos(rtc, 0x09), 0x24);
    EXPECT_EQ(cmos(rtc, 0x32), 0x20);
}

TEST(CmosRtc, BinaryModeFollowsRegisterB) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    cmos_write(rtc, 0x0b, 0x06);  // 24h, binary
    EXPECT_EQ(cmos(rtc, 0x00), 7);
    EXPECT_EQ(cmos(rtc, 0x02), 45);
    EXPECT_EQ(cmos(rtc, 0x04), 13);
    EXPECT_EQ(cmos(rtc, 0x07), 29);
    EXPECT_EQ(cmos(rtc, 0x08), 2);
    EXPECT_EQ(cmos(rtc, 0x09), 24);
    EXPECT_EQ(cmos(rtc, 0x32), 20);
}

TEST(CmosRtc, TwelveHourMode) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    cmos_write(rtc, 0x0b, 0x00);             // 12h, BCD
    EXPECT_EQ(cmos(rtc, 0x04), 0x80 | 0x01); // 1 PM
    c.now = sys_days{2024y / March / 1} + 0h + 5min;
    EXPECT_EQ(cmos(rtc, 0x04), 0x12);        // 12 AM
    c.now = sys_days{2024y / March / 1} + 12h;
    EXPECT_EQ(cmos(rtc, 0x04), 0x80 | 0x12); // 12 PM
    cmos_write(rtc, 0x0b, 0x04);             // 12h, binary
    EXPECT_EQ(cmos(rtc, 0x04), 0x80 | 12);
}

TEST(CmosRtc, HostClockByDefault) {
    CmosRtc rtc(64 * MiB, 0);
    // Read as Linux does: seconds first, then the rest, seconds again.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto before = floor<seconds>(system_clock::now());
        uint8_t sec = cmos(rtc, 0);
        uint8_t min = cmos(rtc, 2), hour = cmos(rtc, 4), day = cmos(rtc, 7), mon = cmos(rtc, 8), yr = cmos(rtc, 9),
                cent = cmos(rtc, 0x32);
        if (cmos(rtc, 0) != sec) continue;  // crossed a second boundary
        auto t = sys_days{year{bcd(cent) * 100 + bcd(yr)} / bcd(mon) / bcd(day)} + hours{bcd(hour)} +
                 minutes{bcd(min)} + seconds{bcd(sec)};
        auto after = floor<seconds>(system_clock::now());
        EXPECT_GE(t, before);
        EXPECT_LE(t, after);
        return;
    }
    FAIL() << "the clock never held still";
}

TEST(CmosRtc, StatusRegistersAsLinuxExpects) {
    CmosRtc rtc(64 * MiB, 0);
    EXPECT_EQ(cmos(rtc, 0x0a), 0x26);
    EXPECT_EQ(cmos(rtc, 0x0b), 0x02);
    EXPECT_EQ(cmos(rtc, 0x0c), 0x00);
    EXPECT_EQ(cmos(rtc, 0x0d), 0x80);  // VRT set, bit 6 clear ("accessible")
    cmos_write(rtc, 0x0a, 0xa6);       // UIP is read-only
    EXPECT_EQ(cmos(rtc, 0x0a), 0x26);
    cmos_write(rtc, 0x0d, 0x00);
    EXPECT_EQ(cmos(rtc, 0x0d), 0x80);
}

TEST(CmosRtc, MemoryBytesFor64MiB) {
    CmosRtc rtc(64 * MiB, 0);
    EXPECT_EQ(cmos(rtc, 0x15) | cmos(rtc, 0x16) << 8, 640);
    EXPECT_EQ(cmos(rtc, 0x17) | cmos(rtc, 0x18) << 8, 63 * 1024);
    EXPECT_EQ(cmos(rtc, 0x30) | cmos(rtc, 0x31) << 8, 63 * 1024);
    EXPECT_EQ(cmos(rtc, 0x34) | cmos(rtc, 0x35) << 8, 48 * 16);  // 48 MiB in 64 KiB units
    EXPECT_EQ(cmos(rtc, 0x5b) | cmos(rtc, 0x5c) << 8 | cmos(rtc, 0x5d) << 16, 0);
}

TEST(CmosRtc, MemoryBytesFor5GiB) {
    // 5 GiB with the hole at 3 GiB: 3 GiB below, 2 GiB above 4 GiB.
    CmosRtc rtc(3 * GiB, 2 * GiB);
    EXPECT_EQ(cmos(rtc, 0x15) | cmos(rtc, 0x16) << 8, 640);
    EXPECT_EQ(cmos(rtc, 0x17) | cmos(rtc, 0x18) << 8, 0xffff);  // capped
    EXPECT_EQ(cmos(rtc, 0x30) | cmos(rtc, 0x31) << 8, 0xffff);
    EXPECT_EQ(cmos(rtc, 0x34) | cmos(rtc, 0x35) << 8, (3072 - 16) * 16);
    EXPECT_EQ(cmos(rtc, 0x5b) | cmos(rtc, 0x5c) << 8 | cmos(rtc, 0x5d) << 16, 2048 * 16);
}

TEST(CmosRtc, TinyMemory) {
    CmosRtc rtc(512 * 1024, 0);
    EXPECT_EQ(cmos(rtc, 0x15) | cmos(rtc, 0x16) << 8, 512);
    EXPECT_EQ(cmos(rtc, 0x17) | cmos(rtc, 0x18) << 8, 0);
    EXPECT_EQ(cmos(rtc, 0x34) | cmos(rtc, 0x35) << 8, 0);
}

TEST(CmosRtc, NmiDisableBitIsMaskedFromTheIndex) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    EXPECT_EQ(cmos(rtc, 0x80 | 0x0a), 0x26);
    EXPECT_TRUE(rtc.nmi_disabled());
    EXPECT_EQ(cmos(rtc, 0x80 | 0x00), 0x07);
    cmos_write(rtc, 0x80 | 0x40, 0x77);
    EXPECT_EQ(cmos(rtc, 0x40), 0x77);
    EXPECT_FALSE(rtc.nmi_disabled());
}

TEST(CmosRtc, SettingTheClockSetsAnOffset) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    // Linux's mc146818_set_time: SET, then year, month, day, hour, min, sec.
    uint8_t b = cmos(rtc, 0x0b);
    cmos_write(rtc, 0x0b, b | 0x80);
    cmos_write(rtc, 0x09, 0x30);
    cmos_write(rtc, 0x08, 0x12);
    cmos_write(rtc, 0x07, 0x31);
    cmos_write(rtc, 0x04, 0x23);
    cmos_write(rtc, 0x02, 0x59);
    c.now += 3s;  // frozen while SET is held
    EXPECT_EQ(cmos(rtc, 0x00), 0x07);
    cmos_write(rtc, 0x00, 0x50);
    cmos_write(rtc, 0x32, 0x20);
    cmos_write(rtc, 0x0b, b);

    auto host = floor<seconds>(c.now);
    auto guest = sys_days{2030y / December / 31} + 23h + 59min + 50s;
    EXPECT_EQ(rtc.guest_offset(), guest - host);
    c.now += 15s;  // the guest clock runs on from what was written
    EXPECT_EQ(cmos(rtc, 0x00), 0x05);
    EXPECT_EQ(cmos(rtc, 0x02), 0x00);
    EXPECT_EQ(cmos(rtc, 0x04), 0x00);
    EXPECT_EQ(cmos(rtc, 0x07), 0x01);
    EXPECT_EQ(cmos(rtc, 0x08), 0x01);
    EXPECT_EQ(cmos(rtc, 0x09), 0x31);
    EXPECT_EQ(cmos(rtc, 0x32), 0x20);
}

TEST(CmosRtc, WritingATimeRegisterWithoutSetTakesEffectAtOnce) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    cmos_write(rtc, 0x0b, 0x06);  // binary
    cmos_write(rtc, 0x02, 10);
    EXPECT_EQ(cmos(rtc, 0x02), 10);
    EXPECT_EQ(rtc.guest_offset(), -35min);
    EXPECT_EQ(cmos(rtc, 0x04), 13);
}

TEST(CmosRtc, DayPastTheMonthEndIsClampedWhenSetIsReleased) {
    FixedClock c;
    c.now = sys_days{2024y / January / 31} + 10h;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    cmos_write(rtc, 0x0b, 0x82);
    cmos_write(rtc, 0x08, 0x02);  // February 31st while editing
    EXPECT_EQ(cmos(rtc, 0x07), 0x31);
    cmos_write(rtc, 0x0b, 0x02);
    EXPECT_EQ(cmos(rtc, 0x07), 0x29);
    EXPECT_EQ(cmos(rtc, 0x08), 0x02);
}

TEST(CmosRtc, GarbageTimeWritesAreClamped) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    cmos_write(rtc, 0x08, 0xff);
    cmos_write(rtc, 0x04, 0xff);
    cmos_write(rtc, 0x00, 0x99);
    EXPECT_EQ(cmos(rtc, 0x08), 0x12);
    EXPECT_EQ(cmos(rtc, 0x04), 0x23);
    EXPECT_EQ(cmos(rtc, 0x00), 0x59);
    cmos_write(rtc, 0x06, 0x03);  // day of week: derived, write ignored
    EXPECT_EQ(bcd(cmos(rtc, 0x06)), int(weekday{floor<days>(sys_days{2024y / December / 29})}.c_encoding()) + 1);
}

TEST(CmosRtc, AnyAccessIsSafe) {
    FixedClock c;
    CmosRtc rtc(64 * MiB, 0, c.fn());
    EXPECT_EQ(read8(rtc, 0), 0xff);  // index register is write-only
    // The outw idiom: index in the low byte, value in the high byte.
    write_n(rtc, 0, 0x5a00 | 0x50, 2);
    EXPECT_EQ(cmos(rtc, 0x50), 0x5a);
    EXPECT_EQ(read_n(rtc, 0, 2), 0x5aff);
    EXPECT_EQ(read_n(rtc, 1, 4), 0xffffff5au);
    EXPECT_EQ(read_n(rtc, 77, 8), ~uint64_t{0});
    write_n(rtc, ~uint64_t{0}, ~uint64_t{0}, 8);
    for (int i = 0; i < 256; ++i) {
        write8(rtc, 0, uint8_t(i));
        write8(rtc, 1, uint8_t(i * 7));
        (void)read8(rtc, 1);
    }
}

}  // namespace
}  // namespace vireo
