#include "vmm/supervisor/hang_detector.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace vireo {

void HangDetector::reset(Clock::time_point now) {
    started_ = false;
    fired_ = false;
    quiet_since_ = now;
}

std::chrono::milliseconds HangDetector::learned_quiet(Clock::time_point now) const {
    if (learned_ms_ <= 0) return std::chrono::milliseconds(0);
    double age_ms = std::chrono::duration<double, std::milli>(now - learned_at_).count();
    double hl = double(std::max<int64_t>(settings_.half_life.count(), 1));
    return std::chrono::milliseconds(int64_t(learned_ms_ * std::exp2(-std::max(age_ms, 0.0) / hl)));
}

std::chrono::milliseconds HangDetector::threshold(Clock::time_point now) const {
    auto scaled = std::chrono::milliseconds(int64_t(double(learned_quiet(now).count()) * settings_.factor));
    return std::clamp(scaled, settings_.min, std::max(settings_.min, settings_.max));
}

std::optional<std::string> HangDetector::sample(Clock::time_point now, const HealthSample& s) {
    if (!settings_.enabled) return std::nullopt;
    if (!started_) {
        started_ = true;
        last_progress_ = s.progress;
        quiet_since_ = now;
        return std::nullopt;
    }
    if (s.progress != last_progress_) {
        // A quiet spell ended: learn from it (decaying maximum).
        double quiet_ms = std::chrono::duration<double, std::milli>(now - quiet_since_).count();
        if (quiet_ms >= double(learned_quiet(now).count())) {
            learned_ms_ = quiet_ms;
            learned_at_ = now;
        }
        last_progress_ = s.progress;
        quiet_since_ = now;
        fired_ = false;
        return std::nullopt;
    }
    if (!s.busy_in_guest) {
        // Idle (halted, or waiting in vireo): not a hang, and not a quiet
        // spell to learn from either.
        quiet_since_ = now;
        return std::nullopt;
    }
    auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(now - quiet_since_);
    auto limit = threshold(now);
    if (fired_ || quiet <= limit) return std::nullopt;
    fired_ = true;
    return fmt::format("no progress for {:.1f} s with every vCPU running guest code (no device access, interrupt or halt; "
                       "limit {:.1f} s = max({:.1f} s, {} x the longest recent quiet spell {:.1f} s))",
                       quiet.count() / 1000.0, limit.count() / 1000.0, settings_.min.count() / 1000.0, settings_.factor,
                       learned_quiet(now).count() / 1000.0);
}

}  // namespace vireo
