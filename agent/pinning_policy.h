// The learned pinning policy: each vCPU has a WaitModel (agent/wait_model.h)
// learning how its run-queue wait grows with what shares its host CPU; the
// policy moves vCPUs (pin to one CPU, or unpin: let the kernel place it)
// where the predicted total weighted wait is lowest.
//
// Weights: a latency-sensitive guest's wait is what its users feel, a batch
// guest's only slows it a little, so the former weighs more (the class is
// configured or inferred, agent/features.h). Search: greedy single moves,
// best first, a few per tick -- 64 vCPUs on 16 CPUs is ~1000 candidates,
// each costed incrementally (only the CPUs it leaves and joins change).
// Hysteresis: a move must gain min_gain and min_relative_gain of what it
// touches, and a vCPU moves at most once per pin interval (1 min). Never
// pins two busy vCPUs of one guest to one host CPU: they would take turns
// instead of running in parallel, whatever the model says. "Busy" cannot be
// known ahead (a batch job that is off now starts later: tried on the
// tuning seed, an average- or peak-based test let that happen), so no two
// vCPUs of one guest are pinned to one CPU at all.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/policy.h"
#include "agent/wait_model.h"

namespace vireo::agent {

struct PinningPolicyParams {
    WaitModelParams wait_model;
    double weight_latency_sensitive = 8;
    double latency_sensitive_sigmas = 0;  // LS vCPUs costed at mean + this many sigmas (1 and 2 did worse on the tuning seed)
    double weight_unknown = 2;
    double weight_batch = 1;
    unsigned max_moves_per_tick = 4;
    double min_gain = 0.005;       // weighted wait share (s/s) a move must save
    double min_relative_gain = 0.10;
    double warmup_s = 30;          // demands must be averaged before the first move
    double pending_timeout_s = 10; // a proposed move not seen applied by then was refused or advised
};

class PinningPolicy final : public Policy {
public:
    explicit PinningPolicy(PinningPolicyParams params = {});
    std::string_view name() const override { return "pinning"; }
    void prepare(const Features&) override;
    void observe_guest(const Features&, size_t guest) override;
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

    const WaitModel* model(const std::string& guest, unsigned vcpu) const;
    double weight(GuestClass c) const;

private:
    struct VcpuState {
        WaitModel model;
        double last_move_s = -1e18;
        // A move proposed but not yet seen in a snapshot (actions take a
        // moment to apply): planned as done, so a sibling is not sent to
        // the same CPU meanwhile. Empty list: unpin.
        std::optional<std::vector<unsigned>> pending;
    };
    struct GuestState {
        std::vector<VcpuState> vcpus;
        std::vector<double> co_load;  // this tick, for learning
        uint64_t last_seen_ns = 0;
    };

    PinningPolicyParams params_;
    std::unordered_map<std::string, GuestState> guests_;
    std::vector<GuestState*> by_index_;
};

}  // namespace vireo::agent
