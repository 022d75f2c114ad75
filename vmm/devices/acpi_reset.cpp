#include "vmm/devices/acpi_reset.h"

#include <fmt/format.h>

namespace vireo {

namespace {
constexpr uint8_t kKeptBits = 0x0a;  // SYS_RST | FULL_RST
}

void AcpiResetRegister::read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = (offset == 0 && i == 0) ? value_.load(std::memory_order_relaxed) : 0xff;
}

void AcpiResetRegister::write(uint64_t offset, std::span<const uint8_t> data) {
    // Only the first byte is port 0xcf9; the rest of a wider access would
    // be 0xcfa.. which are not ours.
    if (offset != 0 || data.empty()) return;
    uint8_t v = data[0];
    value_.store(v & kKeptBits, std::memory_order_relaxed);
    if (v & kRstCpu)
        stop_.request_stop({StopReason::Reset, 0, fmt::format("acpi: guest wrote {:#04x} to the reset register 0xcf9", v)});
}

}  // namespace vireo
