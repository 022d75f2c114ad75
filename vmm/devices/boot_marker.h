// The Firecracker-style boot-complete marker: the guest's init writes the
// byte 123 to VIREO_BOOT_MARKER_ADDR (busybox `devmem 0xc0000000 8 123`)
// and vireo records how long after its own start that happened
// (boot_complete_us, in the log and telemetry).
//
// Registered on the MMIO bus at (VIREO_BOOT_MARKER_ADDR, BootMarker::kWindowSize = 1);
// any width of access at offset 0 is accepted (a 32-bit `devmem` write of
// 123 counts too). The first 123 is recorded; later ones and any other
// value are ignored and counted. Reads return zeros.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class BootMarker final : public Device {
public:
    static constexpr uint64_t kWindowSize = 1;
    static constexpr uint64_t kMagic = 123;

    explicit BootMarker(std::chrono::steady_clock::time_point vmm_start) : start_(vmm_start) {}

    std::string_view name() const override { return "boot-marker"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Microseconds from vireo's start to the guest's first 123 (any thread).
    std::optional<uint64_t> boot_complete_us() const;
    // Writes that were not a first 123 (other values, offsets, repeats).
    uint64_t ignored_writes() const { return ignored_.load(std::memory_order_relaxed); }

private:
    static constexpr uint64_t kUnset = ~uint64_t{0};
    const std::chrono::steady_clock::time_point start_;
    std::atomic<uint64_t> boot_complete_us_{kUnset};
    std::atomic<uint64_t> ignored_{0};
};

}  // namespace vireo
