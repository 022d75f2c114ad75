// The learned pinning policy: each vCPU has a WaitModel (agent/wait_model.h)
// learning how its run-queue wait grows with what shares its host CPU; the
// policy moves vCPUs (pin to one CPU, or unpin: let the kernel place it)
// where the predicted total weighted wait is lowest.
//
// Weights: a latency-sensitive guest's wait is what its users feel, a batch
// guest's only slows it a little, so the former weighs more (the class is
// configured or inferred, agent/features.h); a latency-sensitive vCPU is
// judged by its wait per unit of work (what each of its requests feels),
// not by its wait share alone, which is small for a mostly halted vCPU.
//
// Search. Small problems (up to exhaustive_max_vcpus movable vCPUs that
// matter on up to exhaustive_max_cpus CPUs, and at most
// exhaustive_max_placements placements): every placement of those vCPUs
// over the host CPUs (each pinned to one CPU, or unpinned) with at most
// max_moves_per_tick moves, depth first, the others fixed; the best whole
// placement wins. That finds what no single move does: on 2 CPUs with a
// latency-sensitive vCPU and two half-duty burners, the LS vCPU alone on
// one CPU and both burners on the other (three moves, none of which gains
// alone: moving one vCPU from the kernel's spread changes no load it sees).
// Larger problems: greedy single moves, best first, a few per tick -- 64
// vCPUs on 16 CPUs is ~1000 candidates, each costed incrementally (only
// the CPUs it leaves and joins change) -- and, when no single move gains,
// pair moves among the costliest vCPUs (to the least loaded CPUs, unpinned,
// or each other's place).
// Hard rules of every search: a CPU's pinned vCPUs, with the host's own
// work (other processes, our I/O threads: measured, per CPU on average),
// must fit in cpu_capacity of it (summed smoothed demand), so vCPUs pinned
// together keep their throughput. Without the host's share, two periodic
// burners measured at 0.47 each were pinned together live and lost over
// 10 % of their periods (0.94 of a CPU plus the host's ticks left no slack
// for their timer wake-ups). Hysteresis: a placement must gain min_gain per
// move and min_relative_gain of what it touches, and a vCPU moves at most
// once per pin interval (1 min). Never pins two busy vCPUs of one guest to
// one host CPU: they would take turns instead of running in parallel,
// whatever the model says. "Busy" cannot be
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
    // A latency-sensitive vCPU's weighted wait is divided by max(demand,
    // this) and multiplied by it: per unit of work below this demand.
    // 0: off (wait share only).
    double latency_sensitive_reference_demand = 0.25;
    double cpu_capacity = 0.95;          // summed demand of the vCPUs pinned to one CPU + the host's own work per CPU
    double search_min_demand = 0.02;     // below (and not latency-sensitive): not worth a move, stays where it is
    // Whole-placement search: how often the kernel puts an unpinned vCPU on
    // the least loaded CPU (else as if spread evenly); the simulator's 0.7.
    double kernel_placement_skill = 0.7;
    unsigned exhaustive_max_vcpus = 8;
    unsigned exhaustive_max_cpus = 8;
    size_t exhaustive_max_placements = 20000;
    unsigned pair_candidates = 8;        // fallback: pair moves among this many costliest movable vCPUs
    unsigned pair_cpus = 4;              // ... to the this many least loaded CPUs, unpinned, or each other's place
};

// What the last propose() searched, for tests and the decision log.
struct PinningSearchStats {
    bool exhaustive = false;
    size_t placements = 0;  // evaluated (exhaustive) or candidate moves costed (greedy and pairs)
    size_t pair_moves = 0;  // pair moves taken (fallback)
};

namespace pinning {  // the search (agent/pinning_search.h)
struct Item;
struct Plan;
}  // namespace pinning

class PinningPolicy final : public Policy {
public:
    explicit PinningPolicy(PinningPolicyParams params = {});
    std::string_view name() const override { return "pinning"; }
    void prepare(const Features&) override;
    void observe_guest(const Features&, size_t guest) override;
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

    const WaitModel* model(const std::string& guest, unsigned vcpu) const;
    double weight(GuestClass c) const;
    const PinningSearchStats& last_search() const { return stats_; }

private:
    std::vector<pinning::Item> collect(const Features& f, const PolicyScope& scope, double now_s);
    Proposal explain(const Features& f, const pinning::Item& from, const pinning::Item& to, size_t item,
                     const pinning::Plan& plan) const;

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
    PinningSearchStats stats_;
    bool small_ = false;  // this tick: whole-placement search (and its co-loads for learning)
};

}  // namespace vireo::agent
