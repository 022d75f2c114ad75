// QEMU's pvpanic ISA device (docs/specs/pvpanic.rst in QEMU): one I/O port
// through which a guest kernel reports that it panicked. Linux's pvpanic
// driver finds it through ACPI (_HID "QEMU0001") and writes on panic.
//
// Registered at (VIREO_PVPANIC_PORT = 0x505, Pvpanic::kWindowSize = 1).
//  read:  the events we support: bit 0 PANICKED, bit 1 CRASH_LOADED (0x03)
//  write: bit 0 -> stop the VM with StopReason::Panic (exit status 3);
//         bit 1 -> the guest loaded a crash kernel and will handle the panic
//         itself (kdump): logged once, the guest keeps running.
// Other bits are ignored. Only the first byte of a wider access is the
// port's; the rest of a read is zeros.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class Pvpanic final : public Device {
public:
    static constexpr uint64_t kWindowSize = 1;
    static constexpr uint8_t kPanicked = 0x01;
    static constexpr uint8_t kCrashLoaded = 0x02;
    static constexpr uint8_t kSupported = kPanicked | kCrashLoaded;

    explicit Pvpanic(StopSink& stop) : stop_(stop) {}

    std::string_view name() const override { return "pvpanic"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint64_t crash_loaded_count() const { return crash_loaded_.load(std::memory_order_relaxed); }

private:
    StopSink& stop_;
    std::atomic<uint64_t> crash_loaded_{0};
};

}  // namespace vireo
