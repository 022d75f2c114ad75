// The restart supervisor: detect (hang, watchdog), decide (the restart
// policy and its back-off), restart (through the actuator, so a restart is
// an action like an administrator's: logged, counted, evented).
//
// It owns, per guest, everything restart supervision needs between two
// runs of the guest -- the back-off state, the hang detector, the pending
// restart's timer and due time, the restart history and counts by reason --
// and reaches the guest only through SupervisedGuest, the host's timers
// and the event bus through Hooks. So every rule is unit-tested with a fake
// guest and a fake clock, without KVM (tests/unit/supervisor/).
//
// Control thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vireo/actions.h"
#include "vmm/event_bus.h"
#include "vmm/guest_state.h"
#include "vmm/stop_request.h"
#include "vmm/supervisor/hang_detector.h"
#include "vmm/supervisor/restart_backoff.h"

namespace vireo {

// What the supervisor asks of one guest.
class SupervisedGuest {
public:
    virtual ~SupervisedGuest() = default;
    virtual const std::string& name() const = 0;
    virtual GuestState state() const = 0;
    virtual void set_state(GuestState to, const std::string& why) = 0;
    // Runs so far (0 before the first start); a restart is a run after the first.
    virtual uint64_t starts() const = 0;
    // Why the guest last stopped (nullopt before its first stop).
    virtual const std::optional<StopRequest>& last_stop() const = 0;

    // --- detection, while the guest runs --------------------------------
    virtual bool stop_requested() const = 0;
    virtual void request_stop(StopRequest request) = 0;
    // False on a KVM without binary stats: a halted vCPU cannot be told
    // from a spinning one, so the hang detector would only cry wolf.
    virtual bool can_detect_hangs() const = 0;
    virtual HealthSample health() const = 0;
    // The watchdog's evidence once it expired (nullopt: none, or fed).
    virtual std::optional<std::string> watchdog_expired(uint64_t now_ns) const = 0;

    // --- restart latency: from the fault's detection to the restarted
    // guest's first instruction -----------------------------------------
    virtual void set_restart_detected_at(std::chrono::steady_clock::time_point detected_at) = 0;
    virtual std::optional<std::chrono::nanoseconds> restart_latency() const = 0;
};

// One restart, for `status` and the metrics.
struct RestartRecord {
    int64_t time_ns = 0;  // CLOCK_REALTIME of the restart (or of the decision, for a failed one)
    std::string reason;   // the stop that caused it: "panic: pvpanic: guest panicked"
    int64_t delay_ms = 0;  // the back-off it waited
    std::string source;   // supervisor | admin | controller
};

// The supervisor's state of one guest, read by status and the metrics.
struct Supervision {
    Supervision(const RestartPolicy& policy, const HangSettings& hang_settings) : backoff(policy), hang(hang_settings) {}
    RestartBackoff backoff;
    HangDetector hang;
    std::optional<std::chrono::steady_clock::time_point> restart_due;  // while a back-off runs
    std::deque<RestartRecord> history;  // the last kHistory restarts
    static constexpr size_t kHistory = 32;
    std::map<std::string, uint64_t> restarts_by_reason;  // StopReason name (or who asked) -> count

private:
    friend class Supervisor;
    std::optional<uint64_t> timer;              // the pending restart's
    std::chrono::milliseconds scheduled_delay{0};  // the back-off the pending restart waited
    uint64_t reported_restarts = 0;             // restarts whose latency was logged
};

class Supervisor {
public:
    using Clock = std::chrono::steady_clock;
    using TimerId = uint64_t;
    struct Hooks {
        std::function<Clock::time_point()> now;
        std::function<int64_t()> realtime_ns;  // for the restart history
        // One-shot timers on the control thread's loop.
        std::function<TimerId(std::chrono::milliseconds, std::function<void()>)> after;
        std::function<void(TimerId)> cancel;
        // Restart `guest` now because of `cause`: the host applies a Restart
        // action from the supervisor (which comes back through restart()).
        std::function<void(SupervisedGuest& guest, const std::string& cause)> restart;
    };
    // How often running guests are checked for hangs and watchdog expiry.
    static constexpr std::chrono::milliseconds kHealthInterval{250};

    Supervisor(EventBus& bus, Hooks hooks) : bus_(bus), hooks_(std::move(hooks)) {}
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // A guest to supervise, for as long as the supervisor lives.
    void add(SupervisedGuest& guest, const RestartPolicy& policy, const HangSettings& hang);
    const Supervision* find(std::string_view name) const;
    // Starts the periodic health check (every kHealthInterval).
    void start_health_checks();
    // One health check of every running guest (what the timer runs).
    void check_health();

    // The guest (re)started / was resumed: the hang detector starts over.
    void started(SupervisedGuest& guest);
    void resumed(SupervisedGuest& guest);
    // The guest stopped with `request` (not during a restart or exit): stay
    // stopped, restart now, restart after a back-off (state backoff), or
    // give up (state failed), by its restart policy.
    void stopped(SupervisedGuest& guest, const StopRequest& request);
    // Logs how long the guest's last restart took, once it is known.
    void report_restart_latency(SupervisedGuest& guest);
    // Cancels a pending restart; true if one was pending.
    bool cancel_restart(SupervisedGuest& guest);
    // A Restart action for `guest` from `origin` (the supervisor's own, an
    // administrator's, the controller's): `run` restarts it; on success the
    // restart is recorded. Anyone but the supervisor starts the back-off over.
    std::expected<void, Error> restart(SupervisedGuest& guest, const Origin& origin,
                                       const std::function<std::expected<void, Error>(const std::string& why)>& run);

private:
    struct Entry {
        SupervisedGuest* guest;
        Supervision s;
    };
    Entry& entry(SupervisedGuest& guest);
    void restart_now(Entry& e, const std::string& cause, Clock::time_point detected_at, std::chrono::milliseconds delay);

    EventBus& bus_;
    Hooks hooks_;
    std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace vireo
