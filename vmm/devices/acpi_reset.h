// The reset control register at port 0xcf9 (as on PIIX/ICH chipsets), which
// the FADT names as its RESET_REG (system I/O, 8 bits, RESET_VALUE 0x06,
// flags RESET_REG_SUP). Linux's default reboot path (reboot=acpi, tried
// first) writes it.
//
// Registered at (AcpiResetRegister::kPort = 0xcf9, AcpiResetRegister::kWindowSize = 1).
// It is its own device, not part of AcpiPm, because it sits in its own
// window and shares no state with the PM1 block. If a PCI host bridge ever
// claims 0xcf8-0xcff, that device must take over this byte.
//
// write: bit 2 (RST_CPU) set -> StopReason::Reset; bits 1 (SYS_RST) and 3
// (FULL_RST) are kept and read back. Other bits read 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class AcpiResetRegister final : public Device {
public:
    static constexpr uint64_t kPort = 0xcf9;
    static constexpr uint64_t kWindowSize = 1;
    static constexpr uint8_t kResetValue = 0x06;  // what the FADT's RESET_VALUE says
    static constexpr uint8_t kRstCpu = 0x04;

    explicit AcpiResetRegister(StopSink& stop) : stop_(stop) {}

    std::string_view name() const override { return "acpi-reset"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    StopSink& stop_;
    std::atomic<uint8_t> value_{0};
};

}  // namespace vireo
