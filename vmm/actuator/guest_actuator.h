// The actuator: the one place a change to a running vireo is made. Every
// action -- an administrator's request, the learned controller's decision,
// the supervisor's restart, the config file's initial pinning -- goes
// through apply(): the checks (guest, mode, held levers, hard limits), the
// change itself, its undo, the decision log, the counters, and one
// notification for the events.
//
// State it owns: the process-wide controller mode and limits, each guest's
// controller override and held levers (GuestControl), when each guest's
// balloon target and each vCPU's pinning last changed (for the limits),
// the decision log and the counters. It knows guests only through
// ActuatedGuest/GuestRegistry, so it runs without KVM in the unit tests.
//
// Thread: apply() and every accessor on the control thread; submit() from
// any thread posts to it (the `post` given at construction).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "vireo/actions.h"
#include "vmm/action_log.h"
#include "vmm/actuator/actuated_guest.h"

namespace vireo {

class GuestActuator final : public Actuator {
public:
    using Clock = std::chrono::steady_clock;
    struct Hooks {
        // Runs `task` on the control thread (submit()).
        std::function<void(std::function<void()>)> post;
        // After every decision is logged (applied, advised or refused).
        std::function<void(const ActionRecord&)> decided;
        // The time for the interval limits (tests move it).
        std::function<Clock::time_point()> now = [] { return Clock::now(); };
    };

    GuestActuator(GuestRegistry& guests, Hooks hooks, ControllerMode mode, ControllerLimits limits);

    ActionResult apply(const Action& action, const Origin& origin);
    std::future<ActionResult> submit(Action action, Origin origin) override;
    // A guest's override from the config file, before anything runs.
    void set_initial_control(const std::string& guest, GuestControl control) { levers_[guest].control = control; }
    // A change made before the actuator could see it (the config's initial
    // pinning), logged as applied with its undo.
    void record_applied(const Action& action, const Origin& origin, std::vector<Action> undo);

    ControllerMode controller_mode() const { return mode_; }
    const ControllerLimits& controller_limits() const { return limits_; }
    // The guest's override and held levers (all default for a guest never set).
    const GuestControl& control(std::string_view guest) const;
    // The mode that applies to the guest: its override, else the process-wide one.
    ControllerMode effective_mode(std::string_view guest) const { return control(guest).mode.value_or(mode_); }
    const ActionLog& decisions() const { return decisions_; }
    ActionLog& decisions() { return decisions_; }

    // (source, kind, outcome) -> count: vireo_actions_total.
    using ActionKey = std::tuple<ActionSource, std::string, Outcome>;
    const std::map<ActionKey, uint64_t>& action_counts() const { return action_counts_; }
    // Controller limits hit, by limit name: vireo_controller_limit_hits_total.
    const std::map<std::string, uint64_t>& limit_hits() const { return limit_hits_; }

private:
    struct Levers {
        GuestControl control;
        Clock::time_point last_balloon_change{};
        std::map<unsigned, Clock::time_point> last_pin_change;  // by vCPU
    };
    std::expected<Outcome, Error> execute(const Action& a, const Origin& o, std::vector<Action>& undo);
    std::expected<Outcome, Error> execute_on(ActuatedGuest& g, const Action& a, const Origin& o, std::vector<Action>& undo);
    // Whether the controller may do `a` to `g` at all (mode, held levers, limits).
    std::expected<void, Error> check_controller(ActuatedGuest& g, const Action& a);
    std::expected<void, Error> check_limits(ActuatedGuest& g, const Action& a);
    uint64_t log(ActionRecord record);

    GuestRegistry& guests_;
    Hooks hooks_;
    ControllerMode mode_;
    ControllerLimits limits_;
    std::map<std::string, Levers, std::less<>> levers_;
    ActionLog decisions_;
    std::map<ActionKey, uint64_t> action_counts_;
    std::map<std::string, uint64_t> limit_hits_;
};

}  // namespace vireo
