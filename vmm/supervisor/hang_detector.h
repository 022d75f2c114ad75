// Hang detection for one guest: no progress for longer than its normal.
//
// "Progress" is anything that shows the guest is alive -- an exit to
// vireo's devices (console, disk, heartbeat ports), an interrupt KVM
// delivered, a vCPU waking from halt -- summed into one monotonic counter
// (Machine::health()). A guest is only suspect while every vCPU is inside
// the guest and not halted: a vCPU that waits in vireo (the test guest's
// idle port) or halts in KVM is idle, not hung.
//
// "Its normal" is learned: the longest recent quiet spell between two
// progress events (a decaying maximum: a guest that once went quiet for 8 s
// during a busy phase is allowed 8 s again for a while, but not forever).
// The guest is hung after `factor` x that, never less than `min` (the
// detector must not fire on a guest it has only watched for a second) nor
// more than `max`.
//
// Pure (the caller passes the time and the samples), unit-tested with
// synthetic series.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace vireo {

struct HangSettings {
    bool enabled = true;
    std::chrono::milliseconds min{5000};
    std::chrono::milliseconds max{120000};
    double factor = 4.0;
    // How fast an old long quiet spell is forgotten.
    std::chrono::milliseconds half_life{600000};
    bool operator==(const HangSettings&) const = default;
};

struct HealthSample {
    uint64_t progress = 0;  // monotonic
    bool busy_in_guest = false;  // every vCPU is in the guest and none is halted
};

class HangDetector {
public:
    using Clock = std::chrono::steady_clock;
    explicit HangDetector(HangSettings settings = {}) : settings_(settings) {}

    // Start watching (the guest started or resumed): now counts as progress.
    void reset(Clock::time_point now);
    // One sample; returns the evidence when the guest is hung (once per
    // hang: after that, reset() before it can fire again).
    std::optional<std::string> sample(Clock::time_point now, const HealthSample& s);

    // What "hung" means now: quiet for longer than this.
    std::chrono::milliseconds threshold(Clock::time_point now) const;
    // The learned normal: the longest quiet spell recently seen (decayed).
    std::chrono::milliseconds learned_quiet(Clock::time_point now) const;
    const HangSettings& settings() const { return settings_; }

private:
    HangSettings settings_;
    bool started_ = false;
    bool fired_ = false;
    uint64_t last_progress_ = 0;
    Clock::time_point quiet_since_{};
    // The decaying maximum: its value and when it was recorded.
    double learned_ms_ = 0;
    Clock::time_point learned_at_{};
};

}  // namespace vireo
