// ACPI fixed hardware: the PM1a event and control blocks and the PM timer,
// in our own PIO block (include/vireo/layout.h). It gives the guest a clean
// `poweroff` (S5) and the operator a power button (graceful shutdown).
//
// Registered at (AcpiPm::kBase = VIREO_ACPI_PM1A_EVT = 0x600,
// AcpiPm::kWindowSize = 12), i.e. ports 0x600-0x60b:
//  +0  PM1_STS (16 bit) status bits, write 1 to clear
//  +2  PM1_EN  (16 bit)
//  +4  PM1_CNT (16 bit, VIREO_ACPI_PM1A_CNT) SCI_EN reads 1 (we are always
//      in ACPI mode: the FADT needs no SMI_CMD); SLP_EN (bit 13) with
//      SLP_TYP (bits 10-12) == VIREO_ACPI_S5_TYPE powers off; other sleep
//      types are ignored (logged, counted). SLP_EN reads 0.
//  +6  reserved, reads 0
//  +8  PM_TMR  (32 bit, VIREO_ACPI_PM_TMR) 3.579545 MHz from the host's
//      monotonic clock, 24 bits wide (bits 24-31 read 0): the FADT must NOT
//      set TMR_VAL_EXT (flags bit 8). Read-only.
// FADT: PM1_EVT_LEN 4, PM1_CNT_LEN 2, PM_TMR_LEN 4, SCI_INT VIREO_ACPI_SCI_IRQ.
//
// The SCI (`sci`, GSI VIREO_ACPI_SCI_IRQ) is level-triggered: asserted while
// an enabled status bit is set. ACPI's default for the SCI is active low;
// since KVM_IRQ_LINE level 1 means asserted, the MADT should carry an
// interrupt source override for IRQ 9: level, active high (flags 0x000d).
// TMR_STS is never set: the timer's carry interrupt is not emulated.
// Accesses of any width at any offset are handled byte by byte.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "vireo/layout.h"
#include "vmm/devices/device.h"

namespace vireo {

class AcpiPm final : public Device {
public:
    static constexpr uint64_t kBase = VIREO_ACPI_PM1A_EVT;
    static constexpr uint64_t kWindowSize = 12;
    static constexpr uint64_t kStatusOffset = 0;
    static constexpr uint64_t kEnableOffset = 2;
    static constexpr uint64_t kControlOffset = VIREO_ACPI_PM1A_CNT - kBase;
    static constexpr uint64_t kTimerOffset = VIREO_ACPI_PM_TMR - kBase;
    static_assert(kControlOffset == 4 && kTimerOffset == 8, "layout.h changed: revisit the register map");

    static constexpr uint16_t kTmrSts = 1 << 0;
    static constexpr uint16_t kGblSts = 1 << 5;
    static constexpr uint16_t kPwrBtnSts = 1 << 8;
    static constexpr uint16_t kSlpBtnSts = 1 << 9;
    static constexpr uint16_t kRtcSts = 1 << 10;
    static constexpr uint16_t kWakSts = 1 << 15;
    static constexpr uint16_t kSciEn = 1 << 0;
    static constexpr uint16_t kSlpEn = 1 << 13;
    static constexpr unsigned kSlpTypShift = 10;
    static constexpr uint64_t kTimerHz = 3579545;
    static constexpr uint32_t kTimerMask = 0xffffff;

    AcpiPm(StopSink& stop, InterruptLine& sci);

    std::string_view name() const override { return "acpi-pm"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Operator side (any thread): sets PWRBTN_STS; the SCI fires if the
    // guest enabled the power button (PWRBTN_EN). Returns whether it did,
    // so the caller can fall back to a hard stop for a guest not listening.
    bool press_power_button();
    bool power_button_enabled() const;
    uint32_t timer_value() const;  // what a PM_TMR read returns now
    uint64_t ignored_sleep_requests() const { return ignored_sleeps_.load(std::memory_order_relaxed); }

private:
    void update_sci();  // with mutex_ held

    StopSink& stop_;
    InterruptLine& sci_;
    const std::chrono::steady_clock::time_point timer_start_;

    mutable std::mutex mutex_;  // the registers below (vCPUs and the control thread)
    uint16_t status_ = 0;
    uint16_t enable_ = 0;
    uint16_t control_ = kSciEn;
    bool sci_level_ = false;
    std::atomic<uint64_t> ignored_sleeps_{0};
};

}  // namespace vireo
