#include "vmm/supervisor/restart_backoff.h"

#include <algorithm>

#include <fmt/format.h>

namespace vireo {

std::string_view to_string(StopKind kind) {
    switch (kind) {
        case StopKind::Clean: return "clean";
        case StopKind::Reboot: return "reboot";
        case StopKind::Failure: return "failure";
        case StopKind::Operator: return "operator";
    }
    return "?";
}

std::string_view to_string(RestartMode mode) {
    return mode == RestartMode::Never ? "never" : mode == RestartMode::OnFailure ? "on-failure" : "always";
}

StopKind stop_kind(const StopRequest& r) {
    switch (r.reason) {
        case StopReason::Operator: return StopKind::Operator;
        case StopReason::PowerOff: return StopKind::Clean;
        case StopReason::Reset: return StopKind::Reboot;
        case StopReason::TestExit: return r.code == 0 ? StopKind::Clean : StopKind::Failure;
        case StopReason::Panic:
        case StopReason::TripleFault:
        case StopReason::KvmError:
        case StopReason::Hang:
        case StopReason::Watchdog:
        case StopReason::HostError: return StopKind::Failure;
    }
    return StopKind::Failure;
}

std::chrono::milliseconds RestartBackoff::next_delay() const {
    if (consecutive_ == 0) return std::chrono::milliseconds(0);
    // initial * 2^(n-1), capped; the shift is bounded so it cannot overflow.
    auto delay = policy_.backoff_initial;
    for (unsigned i = 1; i < consecutive_ && delay < policy_.backoff_max; ++i) delay *= 2;
    return std::min(delay, policy_.backoff_max);
}

void RestartBackoff::forget_old_failures(Clock::time_point now) {
    while (!failures_.empty() && now - failures_.front() >= policy_.failure_window) failures_.pop_front();
}

unsigned RestartBackoff::failures_in_window(Clock::time_point now) const {
    return unsigned(std::count_if(failures_.begin(), failures_.end(),
                                  [&](Clock::time_point t) { return now - t < policy_.failure_window; }));
}

void RestartBackoff::reset() {
    consecutive_ = 0;
    failures_.clear();
}

RestartDecision RestartBackoff::on_stop(StopKind kind, Clock::time_point now) {
    using Kind = RestartDecision::Kind;
    // A guest that ran long enough is healthy again: the next restart is
    // immediate, as for a guest that never failed.
    if (last_start_ != Clock::time_point{} && now - last_start_ >= policy_.reset_after) consecutive_ = 0;
    if (kind == StopKind::Failure) {
        failures_.push_back(now);
        forget_old_failures(now);
    }
    if (kind == StopKind::Operator) return {Kind::Stay, {}, "stopped by an operator"};
    bool restart = policy_.mode == RestartMode::Always ? kind != StopKind::Operator
                   : policy_.mode == RestartMode::OnFailure
                       ? kind == StopKind::Failure || kind == StopKind::Reboot
                       : false;
    if (!restart)
        return {Kind::Stay, {}, fmt::format("restart policy {} does not restart after a {} stop", to_string(policy_.mode),
                                            to_string(kind))};
    if (kind == StopKind::Failure && failures_.size() >= policy_.max_failures)
        return {Kind::Fail, {}, fmt::format("{} failures within {} s (max_failures {})", failures_.size(),
                                            policy_.failure_window.count() / 1000.0, policy_.max_failures)};
    auto delay = next_delay();
    ++consecutive_;
    return {Kind::Restart, delay,
            delay.count() == 0 ? std::string("restart policy: immediate restart")
                               : fmt::format("restart policy: back-off {} s (restart {} in a row)", delay.count() / 1000.0,
                                             consecutive_)};
}

}  // namespace vireo
