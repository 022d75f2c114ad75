// The PC's CMOS real-time clock (Motorola MC146818) and its 128 bytes of
// CMOS memory, at index port 0x70 and data port 0x71.
//
// Registered at (CmosRtc::kBase = 0x70, CmosRtc::kWindowSize = 2).
//
// Why it matters: a stock Linux kernel without a CMOS clock stalls ~7 s in
// its rtc_cmos probe. This one answers at once: register A reads 0x26 with
// UIP always clear (no update cycle is ever in progress), register D has
// VRT set, register B starts at 0x02 (24-hour, BCD).
//
// Time is the host's UTC clock plus an offset: when the guest sets its
// clock (any time register, or the classic sequence SET=1, write, SET=0),
// only the offset changes, never the host clock. While SET is held, time
// reads return the frozen value being edited. Fields the guest writes out
// of range are clamped (a day past the month's end becomes its last day).
// The day-of-week register is derived from the date; writes to it are
// ignored. The alarm registers are plain storage.
//
// Not emulated: interrupts (IRQ 8) and their flags in register C (always
// reads 0), the periodic rate, the divider reset — Linux needs none of them
// to read and set the time.
//
// CMOS memory bytes describe RAM as a PC BIOS does: 0x15/0x16 base memory
// in KiB (640), 0x17/0x18 and 0x30/0x31 extended memory above 1 MiB in KiB
// (capped at 0xffff), 0x34/0x35 memory between 16 MiB and the MMIO hole in
// 64 KiB units (capped at 0xffff), 0x5b-0x5d memory above 4 GiB in 64 KiB
// units (capped at 0xffffff). The century byte is 0x32: the FADT's CENTURY
// field should say 0x32 so Linux writes it when setting the clock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class CmosRtc final : public Device {
public:
    using WallClock = std::function<std::chrono::system_clock::time_point()>;

    static constexpr uint64_t kBase = 0x70;
    static constexpr uint64_t kWindowSize = 2;

    // `ram_below_4g`: bytes of RAM from address 0 up to the MMIO hole;
    // `ram_above_4g`: bytes of RAM from 4 GiB. `clock` defaults to the host's
    // system_clock (tests pass a fixed one).
    CmosRtc(uint64_t ram_below_4g, uint64_t ram_above_4g, WallClock clock = {});

    std::string_view name() const override { return "cmos-rtc"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Guest clock minus host clock (0 until the guest sets its clock).
    std::chrono::seconds guest_offset() const;
    // Bit 7 of the last index write (NMI disable); kept, never acted on.
    bool nmi_disabled() const;

private:
    struct Fields {
        int sec, min, hour, day, month, year;  // year: full, e.g. 2024
    };
    using Seconds = std::chrono::sys_seconds;

    Seconds host_now() const;
    Fields current_fields() const;
    static Fields to_fields(Seconds t);
    static Seconds from_fields(const Fields& f);  // clamps out-of-range fields
    uint8_t encode(int value) const;
    int decode(uint8_t value) const;
    uint8_t read_register(uint8_t index);
    void write_register(uint8_t index, uint8_t value);
    void set_time_field(uint8_t index, uint8_t value);

    WallClock clock_;
    mutable std::mutex mutex_;
    std::array<uint8_t, 128> ram_{};
    uint8_t index_ = 0;
    bool nmi_disabled_ = false;
    std::chrono::seconds offset_{0};
    std::optional<Fields> frozen_;  // set while register B's SET bit is 1
};

}  // namespace vireo
