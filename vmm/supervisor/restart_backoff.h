// The restart policy of one guest as a state machine: given why the guest
// stopped and when, restart it now, later, never, or give up (`failed`).
//
// Kubernetes' CrashLoopBackOff is the model operators already know: the
// first restart is immediate, then the delay starts at `backoff_initial`
// and doubles up to `backoff_max`; a guest that ran `reset_after` without
// stopping starts over at an immediate restart. Independently, `max_failures`
// failures within `failure_window` put the guest in `failed`, where it stays
// until an administrator restarts it (reset()).
//
// Pure: the caller passes the time, so every rule is unit-tested without
// waiting; the host turns decisions into timers and actions.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "vmm/stop_request.h"

namespace vireo {

enum class RestartMode { Never, OnFailure, Always };
std::string_view to_string(RestartMode mode);

// A guest's restart policy, as the config file and --restart give it.
struct RestartPolicy {
    RestartMode mode = RestartMode::Never;
    std::chrono::milliseconds backoff_initial{10000};
    std::chrono::milliseconds backoff_max{300000};
    std::chrono::milliseconds reset_after{600000};
    unsigned max_failures = 5;
    std::chrono::milliseconds failure_window{600000};
};

// How a stop counts for the policy.
enum class StopKind {
    Clean,     // the guest powered itself off, or a test exit with status 0
    Reboot,    // the guest asked for a reset (reboot)
    Failure,   // a fault: panic, triple fault, KVM error, hang, watchdog, non-zero test exit, host error
    Operator,  // an administrator or a signal stopped it: never restarted
};
std::string_view to_string(StopKind kind);
StopKind stop_kind(const StopRequest& request);

struct RestartDecision {
    enum class Kind { Stay, Restart, Fail };
    Kind kind = Kind::Stay;
    std::chrono::milliseconds delay{0};  // Restart: how long to wait first
    std::string why;                     // for the log and the events
};

class RestartBackoff {
public:
    using Clock = std::chrono::steady_clock;
    explicit RestartBackoff(RestartPolicy policy) : policy_(policy) {}

    // The guest (re)started at `now`.
    void on_start(Clock::time_point now) { last_start_ = now; }
    // The guest stopped at `now` for a reason of `kind`: what to do.
    RestartDecision on_stop(StopKind kind, Clock::time_point now);
    // An administrator restarts the guest: forget the failures and the delay.
    void reset();

    const RestartPolicy& policy() const { return policy_; }
    // The delay the next automatic restart would wait (0: immediate).
    std::chrono::milliseconds next_delay() const;
    // Failures that still count towards `failed` at `now`.
    unsigned failures_in_window(Clock::time_point now) const;
    // Automatic restarts since the last reset (the doubling step).
    unsigned consecutive_restarts() const { return consecutive_; }

private:
    void forget_old_failures(Clock::time_point now);

    RestartPolicy policy_;
    Clock::time_point last_start_{};
    unsigned consecutive_ = 0;
    std::deque<Clock::time_point> failures_;
};

}  // namespace vireo
