// The test-only `target-after` balloon targets (BalloonTargetAt) as a small
// state machine, apart from timers and the device so it can be unit-tested:
// each entry becomes due SECONDS after the guest has reached the target that
// was current when the entry before it was set (the first entry waits for
// the first target-at, if there is one). A slow guest -- an emulated one
// inflates 256 MiB in 20 to 90 s -- then only makes a scenario slower, never
// makes it check a half-inflated balloon.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/devices/virtio/virtio_config.h"

namespace vireo {

class BalloonTargetSequence {
public:
    using Clock = std::chrono::steady_clock;

    explicit BalloonTargetSequence(const std::vector<BalloonTargetAt>& entries) {
        for (const auto& e : entries) {
            if (e.after_reached)
                steps_.push_back(e);
            else
                need_changes_ = 1;  // the first step waits for a target-at to have been set
        }
    }

    bool done() const { return next_ >= steps_.size(); }

    // Polled. target_changes: targets set so far (the device's counter);
    // reached_at: when the guest reached the current target, if it has.
    // Returns the MiB to set now when the next entry is due; the caller sets
    // it, which counts as one more target change.
    std::optional<uint64_t> due(Clock::time_point now, uint64_t target_changes,
                                std::optional<Clock::time_point> reached_at) {
        if (done() || target_changes < need_changes_ || !reached_at) return std::nullopt;
        const auto& step = steps_[next_];
        if (now - *reached_at < std::chrono::duration<double>(step.seconds)) return std::nullopt;
        ++next_;
        need_changes_ = target_changes + 1;
        return step.mib;
    }

private:
    std::vector<BalloonTargetAt> steps_;
    size_t next_ = 0;
    uint64_t need_changes_ = 0;
};

}  // namespace vireo
