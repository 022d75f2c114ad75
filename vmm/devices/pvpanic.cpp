#include "vmm/devices/pvpanic.h"

#include "vmm/log.h"

namespace vireo {

void Pvpanic::read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = (offset == 0 && i == 0) ? kSupported : 0;
}

void Pvpanic::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.empty()) return;
    uint8_t events = data[0];
    if (events & kCrashLoaded) {
        // Logged once: a guest that keeps writing cannot flood the log.
        if (crash_loaded_.fetch_add(1, std::memory_order_relaxed) == 0)
            log_info("pvpanic: guest crash kernel loaded");
    }
    if (events & kPanicked) stop_.request_stop({StopReason::Panic, 0, "pvpanic: guest panicked"});
}

}  // namespace vireo
