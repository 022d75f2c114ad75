// The controller: one tick turns a telemetry snapshot into decisions.
//
//   snapshot -> features (rates, demands, memory use, class)
//            -> models learn (per guest, through the ParallelFor seam)
//            -> the CPU and memory policies propose
//            -> the rules every policy obeys: the guest's mode (off: nothing;
//               advise: decisions marked advisory), held levers (nothing on
//               that lever of that guest), the hard limits (balloon step
//               and interval for reclaim -- giving memory back is exempt,
//               as in apply() --, floor; pin interval)
//            -> decisions, each with its reason, prediction and inputs.
//
// It applies nothing: the caller submits each decision's action with its
// origin() through vireo::Actuator, which checks mode, levers and limits
// again (a decision may race an administrator). The controller is not
// thread-safe; call tick() from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/executor.h"
#include "agent/features.h"
#include "agent/policy.h"
#include "agent/snapshot.h"
#include "vireo/actions.h"

namespace vireo::agent {

struct Decision {
    Action action;           // guest set; Pin, Unpin or BalloonTarget
    std::string policy;      // "pinning", "balloon", or a baseline's name
    std::string reason;      // why, in words
    std::string prediction;  // what the policy expects to follow
    std::string inputs;      // the figures it acted on
    bool advisory = false;   // the guest's mode is advise: submit it, apply() records it as advised

    // For Actuator::submit: source Controller, who = the policy, reason with the prediction.
    Origin origin() const;
};
using Decisions = std::vector<Decision>;

struct ControllerCounters {
    uint64_t ticks = 0;
    uint64_t decisions = 0;
    uint64_t advisory = 0;
    uint64_t held_or_off = 0;     // proposals dropped: the guest is off or the lever is held
    uint64_t deferred_by_interval = 0;  // balloon_interval_s / pin_interval_s not yet passed
    uint64_t clamped_by_step = 0;       // reclaim cut to balloon_step_percent
    uint64_t clamped_by_floor = 0;      // cut to leave balloon_floor_mib
};

class Controller {
public:
    Controller(std::unique_ptr<Policy> cpu_policy, std::unique_ptr<Policy> memory_policy,
               ParallelFor parallel_for = serial_for(), FeatureParams feature_params = {});
    // The learned pinning and balloon policies with their default parameters.
    static Controller learned(ParallelFor parallel_for = serial_for());

    Decisions tick(const Snapshot& snapshot);

    const Policy& cpu_policy() const { return *cpu_; }
    const Policy& memory_policy() const { return *memory_; }
    const ControllerCounters& counters() const { return counters_; }

private:
    struct GuestLimits {
        uint64_t last_balloon_change_ns = 0;
        bool balloon_changed = false;
        uint64_t last_target_seen = 0;
        // Our targets proposed but not yet seen in a snapshot (actions take
        // a moment), oldest first: the last is what the next proposal is
        // measured against, so a second give-back from the stale target does
        // not turn into a reclaim. A target seen that is none of them is
        // someone else's.
        std::vector<uint64_t> pending_targets;
        std::vector<uint64_t> last_pin_ns;  // per vCPU position; 0: never
        uint64_t last_seen_ns = 0;
    };

    // Applies mode, limits and rate limits to one proposal; false: dropped.
    bool bound(const Features& f, const Proposal& p, GuestLimits& lim, Decision& d);

    std::unique_ptr<Policy> cpu_;
    std::unique_ptr<Policy> memory_;
    ParallelFor parallel_for_;
    FeatureExtractor features_;
    std::unordered_map<std::string, GuestLimits> limits_;
    ControllerCounters counters_;
};

}  // namespace vireo::agent
