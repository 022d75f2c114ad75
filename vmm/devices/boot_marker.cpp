#include "vmm/devices/boot_marker.h"

#include <algorithm>
#include <cstring>

#include "vmm/log.h"

namespace vireo {

void BootMarker::read(uint64_t, std::span<uint8_t> data) { std::memset(data.data(), 0, data.size()); }

void BootMarker::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.empty() || load_le(data) != kMagic) {
        ignored_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    auto elapsed = std::chrono::steady_clock::now() - start_;
    uint64_t us = uint64_t(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
    uint64_t expected = kUnset;
    // Only the first marker is the boot; compare-exchange keeps two vCPUs
    // writing at once from both claiming it.
    if (!boot_complete_us_.compare_exchange_strong(expected, us, std::memory_order_acq_rel)) {
        ignored_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    log_info("guest boot complete in {:.1f} ms (boot_complete_us={})", double(us) / 1000.0, us);
}

std::optional<uint64_t> BootMarker::boot_complete_us() const {
    uint64_t us = boot_complete_us_.load(std::memory_order_acquire);
    if (us == kUnset) return std::nullopt;
    return us;
}

}  // namespace vireo
