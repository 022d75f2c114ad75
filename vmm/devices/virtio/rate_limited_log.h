// Warnings a guest can trigger at will (bad descriptors, host I/O errors
// it provokes) must not flood vireo's log, yet none may go unreported: a
// token bucket lets a burst through, then one line per second, and the next
// line that gets through says how many were held back. Every event is
// counted whether or not it is printed.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "vmm/log.h"

namespace vireo {

class RateLimitedLog {
public:
    explicit RateLimitedLog(unsigned burst = 10, std::chrono::milliseconds refill = std::chrono::seconds(1))
        : burst_(burst), refill_(refill), tokens_(burst) {}

    // Logs "prefix: what" as a warning if the budget allows; always counts.
    void warn(std::string_view prefix, std::string_view what) {
        std::lock_guard lock(mutex_);
        ++events_;
        auto now = std::chrono::steady_clock::now();
        if (last_refill_ == std::chrono::steady_clock::time_point{}) last_refill_ = now;
        while (tokens_ < burst_ && now - last_refill_ >= refill_) {
            ++tokens_;
            last_refill_ += refill_;
        }
        if (tokens_ == burst_) last_refill_ = now;
        if (tokens_ == 0) {
            ++suppressed_;
            return;
        }
        --tokens_;
        if (suppressed_)
            log_warn("{}: {} ({} similar warnings suppressed)", prefix, what, suppressed_);
        else
            log_warn("{}: {}", prefix, what);
        suppressed_ = 0;
    }
    uint64_t events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }

private:
    mutable std::mutex mutex_;
    unsigned burst_;
    std::chrono::milliseconds refill_;
    unsigned tokens_;
    std::chrono::steady_clock::time_point last_refill_{};
    uint64_t events_ = 0;
    uint64_t suppressed_ = 0;
};

}  // namespace vireo
