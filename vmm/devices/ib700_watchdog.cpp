#include "vmm/devices/ib700_watchdog.h"

#include <fmt/format.h>

#include "vmm/wall_time.h"

namespace vireo {

Ib700Watchdog::Ib700Watchdog(std::optional<std::chrono::milliseconds> override_timeout) : override_(override_timeout) {}

std::chrono::milliseconds Ib700Watchdog::timeout_for(uint8_t value) {
    return std::chrono::seconds(30 - 2 * (value & 15));
}

void Ib700Watchdog::read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = 0xff;
}

void Ib700Watchdog::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    if (offset == kStopOffset) {
        deadline_ns_.store(kDisarmed, std::memory_order_release);
        return;
    }
    if (offset != kStartOffset) return;
    auto timeout = override_ ? *override_ : timeout_for(data[0]);
    uint64_t now = monotonic_ns();
    timeout_ms_.store(uint64_t(timeout.count()), std::memory_order_relaxed);
    last_ping_ns_.store(now, std::memory_order_relaxed);
    pings_.fetch_add(1, std::memory_order_relaxed);
    deadline_ns_.store(now + uint64_t(timeout.count()) * 1000000ull, std::memory_order_release);
}

std::optional<std::string> Ib700Watchdog::expired(uint64_t now_ns) const {
    uint64_t deadline = deadline_ns_.load(std::memory_order_acquire);
    if (deadline == kDisarmed || now_ns < deadline) return std::nullopt;
    uint64_t last = last_ping_ns_.load(std::memory_order_relaxed);
    return fmt::format("watchdog (ib700) expired: last fed {:.1f} s ago, timeout {:.1f} s, {} feeds in all",
                       double(now_ns - last) / 1e9, double(timeout_ms_.load(std::memory_order_relaxed)) / 1e3,
                       pings_.load(std::memory_order_relaxed));
}

}  // namespace vireo
