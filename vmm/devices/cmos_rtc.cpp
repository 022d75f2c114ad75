#include "vmm/devices/cmos_rtc.h"

#include <algorithm>


namespace vireo {

namespace {

constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegA = 0x0a;
constexpr uint8_t kRegB = 0x0b;
constexpr uint8_t kRegC = 0x0c;
constexpr uint8_t kRegD = 0x0d;
constexpr uint8_t kCentury = 0x32;

constexpr uint8_t kRegAUip = 0x80;
// 32.768 kHz time base (DV=010), 1024 Hz periodic rate (RS=0110): the
// power-on value Linux expects and writes back itself.
constexpr uint8_t kRegADefault = 0x26;
constexpr uint8_t kRegBSet = 0x80;
constexpr uint8_t kRegBBinary = 0x04;  // DM: binary, not BCD
constexpr uint8_t kRegB24Hour = 0x02;
constexpr uint8_t kRegBDefault = kRegB24Hour;
constexpr uint8_t kRegDValid = 0x80;  // VRT: the battery is fine

constexpr uint8_t kIndexMask = 0x7f;
constexpr uint8_t kNmiDisable = 0x80;

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

void put16(std::array<uint8_t, 128>& ram, uint8_t at, uint64_t v) {
    ram[at] = uint8_t(v);
    ram[at + 1] = uint8_t(v >> 8);
}

}  // namespace

CmosRtc::CmosRtc(uint64_t ram_below_4g, uint64_t ram_above_4g, WallClock clock) : clock_(std::move(clock)) {
    ram_[kRegA] = kRegADefault;
    ram_[kRegB] = kRegBDefault;

    // Memory size bytes, as a PC BIOS leaves them.
    // Base memory counts the EBDA too (640, as PC BIOSes and QEMU say);
    // the e820 map is what tells the guest the EBDA is reserved.
    uint64_t base_kib = std::min<uint64_t>(ram_below_4g, 640 * KiB) / KiB;
    put16(ram_, 0x15, base_kib);
    uint64_t ext_kib = ram_below_4g > MiB ? (ram_below_4g - MiB) / KiB : 0;
    ext_kib = std::min<uint64_t>(ext_kib, 0xffff);
    put16(ram_, 0x17, ext_kib);
    put16(ram_, 0x30, ext_kib);
    uint64_t above_16m = ram_below_4g > 16 * MiB ? (ram_below_4g - 16 * MiB) / (64 * KiB) : 0;
    put16(ram_, 0x34, std::min<uint64_t>(above_16m, 0xffff));
    uint64_t above_4g = std::min<uint64_t>(ram_above_4g / (64 * KiB), 0xffffff);
    ram_[0x5b] = uint8_t(above_4g);
    ram_[0x5c] = uint8_t(above_4g >> 8);
    ram_[0x5d] = uint8_t(above_4g >> 16);
}

CmosRtc::Seconds CmosRtc::host_now() const {
    return std::chrono::floor<std::chrono::seconds>(clock_ ? clock_() : std::chrono::system_clock::now());
}

CmosRtc::Fields CmosRtc::to_fields(Seconds t) {
    using namespace std::chrono;
    auto day = floor<days>(t);
    year_month_day ymd{day};
    hh_mm_ss hms{t - day};
    return Fields{int(hms.seconds().count()), int(hms.minutes().count()), int(hms.hours().count()),
                  int(unsigned(ymd.day())),   int(unsigned(ymd.month())),  int(ymd.year())};
}

CmosRtc::Seconds CmosRtc::from_fields(const Fields& f) {
    using namespace std::chrono;
    year y{std::clamp(f.year, 0, 9999)};
    month m{unsigned(std::clamp(f.month, 1, 12))};
    unsigned month_days = unsigned((y / m / std::chrono::last).day());
    day d{std::clamp(unsigned(std::max(f.day, 1)), 1u, month_days)};
    return sys_days{y / m / d} + hours{std::clamp(f.hour, 0, 23)} + minutes{std::clamp(f.min, 0, 59)} +
           seconds{std::clamp(f.sec, 0, 59)};
}

CmosRtc::Fields CmosRtc::current_fields() const {
    if (frozen_) return *frozen_;
    return to_fields(host_now() + offset_);
}

uint8_t CmosRtc::encode(int value) const {
    if (ram_[kRegB] & kRegBBinary) return uint8_t(value);
    return uint8_t(((value / 10) % 10) << 4 | (value % 10));
}

int CmosRtc::decode(uint8_t value) const {
    if (ram_[kRegB] & kRegBBinary) return value;
    return (value >> 4) * 10 + (value & 0x0f);
}

uint8_t CmosRtc::read_register(uint8_t index) {
    switch (index) {
        case kSeconds: return encode(current_fields().sec);
        case kMinutes: return encode(current_fields().min);
        case kHours: {
            int h = current_fields().hour;
            if (ram_[kRegB] & kRegB24Hour) return encode(h);
            int h12 = h % 12 == 0 ? 12 : h % 12;
            return encode(h12) | (h >= 12 ? 0x80 : 0);
        }
        case kDayOfWeek: {
            std::chrono::weekday wd{std::chrono::sys_days{std::chrono::floor<std::chrono::days>(
                from_fields(current_fields()))}};
            return encode(int(wd.c_encoding()) + 1);  // 1 = Sunday
        }
        case kDayOfMonth: return encode(current_fields().day);
        case kMonth: return encode(current_fields().month);
        case kYear: return encode(current_fields().year % 100);
        case kCentury: return encode(current_fields().year / 100);
        case kRegA: return ram_[kRegA] & ~kRegAUip;  // never inside an update cycle
        case kRegC: return 0;                        // no interrupt flags: interrupts are not emulated
        case kRegD: return kRegDValid;
        default: return ram_[index];
    }
}

void CmosRtc::set_time_field(uint8_t index, uint8_t value) {
    Fields f = current_fields();
    switch (index) {
        case kSeconds: f.sec = std::clamp(decode(value), 0, 59); break;
        case kMinutes: f.min = std::clamp(decode(value), 0, 59); break;
        case kHours:
            if (ram_[kRegB] & kRegB24Hour) {
                f.hour = std::clamp(decode(value), 0, 23);
            } else {
                int h12 = std::clamp(decode(value & 0x7f), 1, 12);
                f.hour = h12 % 12 + ((value & 0x80) ? 12 : 0);
            }
            break;
        case kDayOfMonth: f.day = std::clamp(decode(value), 1, 31); break;
        case kMonth: f.month = std::clamp(decode(value), 1, 12); break;
        case kYear: f.year = f.year / 100 * 100 + std::clamp(decode(value), 0, 99); break;
        case kCentury: f.year = std::clamp(decode(value), 0, 99) * 100 + f.year % 100; break;
    }
    if (frozen_) {
        // Fields are combined (and a day past the month's end clamped) only
        // when SET is released, so writing year, month, day in any order works.
        *frozen_ = f;
    } else {
        offset_ = from_fields(f) - host_now();
    }
}

void CmosRtc::write_register(uint8_t index, uint8_t value) {
    switch (index) {
        case kSeconds:
        case kMinutes:
        case kHours:
        case kDayOfMonth:
        case kMonth:
        case kYear:
        case kCentury: set_time_field(index, value); return;
        case kDayOfWeek: return;  // derived from the date
        case kRegA: ram_[kRegA] = value & ~kRegAUip; return;
        case kRegB: {
            bool was_set = ram_[kRegB] & kRegBSet;
            bool set = value & kRegBSet;
            if (!was_set && set) {
                frozen_ = current_fields();
            } else if (was_set && !set && frozen_) {
                offset_ = from_fields(*frozen_) - host_now();
                frozen_.reset();
            }
            ram_[kRegB] = value;
            return;
        }
        case kRegC:
        case kRegD: return;  // read-only
        default: ram_[index] = value; return;
    }
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
        if (port == 1)
            data[i] = read_register(index_);
        else
            data[i] = 0xff;  // the index register is write-only; beyond our ports the bus floats
    }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    // Byte by byte, so `outw 0x70` with the index in AL and the value in AH
    // (an old idiom) does what it does on a PC.
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
        if (port == 0) {
            index_ = data[i] & kIndexMask;
            nmi_disabled_ = data[i] & kNmiDisable;
        } else if (port == 1) {
            write_register(index_, data[i]);
        }
    }
}

std::chrono::seconds CmosRtc::guest_offset() const {
    std::lock_guard lock(mutex_);
    if (frozen_) return from_fields(*frozen_) - host_now();
    return offset_;
}

bool CmosRtc::nmi_disabled() const {
    std::lock_guard lock(mutex_);
    return nmi_disabled_;
}

}  // namespace vireo
