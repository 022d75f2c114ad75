// A simulated host for evaluating policies: N CPUs shared by the guests'
// vCPUs, guest memory behind balloons, and the counters a live vireo would
// report, as Snapshots.
//
// CPU: each tick every vCPU lands on a CPU -- its pin, or for an unpinned
// one (or one pinned to several CPUs: among those) the kernel's choice,
// modelled as the least loaded CPU with probability kernel_smart_placement
// and any CPU otherwise (wake-up balancing sees a stale picture). A CPU is shared max-min fairly (CFS
// with equal weights; other processes' background load takes its share
// too): a vCPU wanting d runs r = min(d, fair level) and waits
//   (d - r) + 0.2 * r * q(o),  q(o) = o / (1 - min(o, 0.9))
// of the tick, o being what the others ran: what it could not get, plus
// queueing behind the others that grows more than linearly as they near a
// whole CPU (an M/M/1-like knee, capped, scaled down for CFS's wake-up
// preemption).
//
// Memory: a guest's limit is RAM - actual, the balloon holding `actual`
// (moving towards the target at inflate/deflate rates, and never taking
// pages the guest's allocations hold). Its working set ("need") is its
// allocations (memory_used), its hot page cache (memory_cache) and this
// tick's sub-second spike (memory_spike). It reports MemAvailable = limit -
// allocations (page cache counts as available, as in Linux) and MemFree
// of a few percent of the limit when it keeps page cache (free memory
// fills with cache), else limit - allocations. Need above the limit is an
// under-provisioned tick: squeezed hot cache refaults (major faults in
// proportion to what was squeezed); allocations above the limit must swap
// (a failed allocation each tick it is short) -- or, with deflate-on-OOM,
// the guest takes balloon pages back. Running within 2 % of its need it
// refaults a little too: the early warning a real guest gives.
// Host free = host RAM - sum(RAM - actual) of the running guests, as if
// each had touched all the memory it is allowed (page cache fills it). A
// guest asking to start waits until host free covers its RAM (what memory
// saved buys: guests served); a tick the running guests' limits exceed
// the host's RAM counts as one failed allocation (the host would swap).
//
// Actions take effect action_delay_ticks later, and the simulator refuses
// what apply() would refuse under the hard limits (counted in metrics):
// reclaim over the step, within the interval or into the floor; giving
// memory back is never refused.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "agent/scenarios.h"
#include "agent/snapshot.h"
#include "vireo/actions.h"

namespace vireo::agent {

inline constexpr double kOracleWindowS = 60;

struct SimOptions {
    uint64_t seed = 1;  // the kernel's placement noise
    unsigned action_delay_ticks = 1;
    double kernel_smart_placement = 0.7;
    double inflate_bytes_per_s = 256.0 * (1 << 20);
    double deflate_bytes_per_s = 1024.0 * (1 << 20);
    ControllerMode mode = ControllerMode::Auto;
    ControllerLimits limits;
};

struct SimMetrics {
    double wait_vcpu_s = 0;           // run-queue wait, all vCPUs
    double ls_p99_wait_us = 0;        // p99 over (tick, latency-sensitive vCPU) of wait per wake-up
    double ls_mean_wait_us = 0;
    double batch_throughput = 1;      // CPU the batch vCPUs got / wanted
    double idle_gib_s = 0;            // memory guests had but did not use
    // Host memory the balloons saved: 1 - sum(RAM - balloon) / sum(RAM)
    // over the guests' ticks (0: no balloon; what more guests could use).
    double host_memory_saved = 0;
    // Autopilot's slack: sum(limit - need) / sum(limit), limit = RAM - balloon.
    double slack = 0;
    uint64_t guest_ticks = 0;               // ballooned guests x ticks
    uint64_t under_provisioned_ticks = 0;   // of those: need above the limit
    uint64_t failed_allocations = 0;  // guest-ticks short of memory (swapping), and ticks the host is
    uint64_t host_short_ticks = 0;    // of those: ticks the host could not back its guests' limits
    double served = 1;                // guest-ticks run / asked for (arrivals wait for memory)
    double admission_wait_s = 0;      // guest-seconds waited for admission
    // A hindsight oracle's memory saved: each guest's limit at the most it
    // needs over the next oracle_window_s (it knows the future; reclaim and
    // give-back take that long at the limits' pace). Regret = this - saved.
    double oracle_memory_saved = 0;
    // The learned balloon policy's working-set estimate against the need that
    // followed, per guest-tick, in shares of guest RAM (-1: not a learned policy):
    // mean absolute error, and pinball loss at the 99th percentile.
    double ws_mae = -1;
    double ws_pinball_p99 = -1;
    double swapped_gib_s = 0;
    uint64_t oom_deflates = 0;
    uint64_t pin_actions = 0;
    uint64_t balloon_actions = 0;
    uint64_t refused_actions = 0;     // crossed a hard limit: must stay 0 for any controller
    uint64_t actions_for_departed = 0;  // arrived after their guest left (churn)
    uint64_t busy_siblings_pinned_together = 0;  // guest-ticks with two busy vCPUs (mean demand >= 0.2) pinned to one CPU
};

class Simulator {
public:
    Simulator(const Scenario& scenario, SimOptions options = {});

    bool done() const { return tick_ >= scenario_.ticks; }
    size_t tick() const { return tick_; }
    // The counters as vireo would report them now.
    Snapshot snapshot() const;
    // Queued; applied action_delay_ticks later unless a hard limit forbids it.
    void submit(const Action& action);
    // Runs one tick.
    void step();
    SimMetrics metrics() const;
    const Scenario& scenario() const { return scenario_; }

    // State, for tests.
    uint64_t balloon_target(size_t guest) const { return guests_[guest].target; }
    uint64_t balloon_actual(size_t guest) const { return uint64_t(guests_[guest].actual); }
    std::optional<unsigned> pinned_cpu(size_t guest, size_t vcpu) const;
    bool running(size_t guest) const { return guests_[guest].running; }
    // A running guest's working set this tick (allocations + hot cache), by name.
    std::optional<double> working_set_bytes(const std::string& guest) const;

private:
    struct VcpuState {
        std::optional<std::vector<unsigned>> pin;
        double last_pin_s = -1e18;
        double in_kvm_run_ns = 0, runq_wait_ns = 0, halt_wait_ns = 0, runq_waits = 0, exits = 0;
    };
    struct GuestState {
        uint64_t target = 0;
        double actual = 0;
        double last_balloon_change_s = -1e18;
        bool balloon_changed = false;
        double major_faults = 0, minor_faults = 0, swap_in = 0, swap_out = 0, swapped = 0;
        uint64_t oom_deflates = 0;
        std::vector<VcpuState> vcpus;
        bool running = false, admitted = false;
        size_t stop_tick = 0;  // exclusive
    };
    struct Pending {
        size_t due_tick;
        Action action;
    };

    void apply(const Action& action);
    void admit_and_retire();
    // One tick's parts, in the order step() runs them.
    struct Placed {
        size_t guest, vcpu;
        unsigned cpu;
        double demand;
    };
    double background_load(unsigned cpu) const;  // this tick's, 0 where the scenario has none
    std::vector<Placed> place_vcpus();
    void run_vcpus(const std::vector<Placed>& placed);
    void count_busy_siblings_pinned_together();
    void step_memory();
    double now_s() const { return double(tick_) * scenario_.tick_s; }

    Scenario scenario_;
    SimOptions options_;
    uint64_t rng_state_;
    size_t tick_ = 0;
    std::vector<GuestState> guests_;
    std::vector<double> cpu_busy_ns_;
    std::deque<Pending> pending_;
    double host_available_fraction_ = 1;
    SimMetrics metrics_;
    std::vector<float> ls_waits_us_;
    std::vector<std::vector<double>> mean_demand_;  // per guest, per vCPU: over the whole scenario
    double batch_ran_ = 0, batch_wanted_ = 0;
    double ram_s_ = 0, limit_s_ = 0, slack_s_ = 0;  // byte-seconds of ballooned guests
    double served_ticks_ = 0, asked_ticks_ = 0;
    double oracle_limit_s_ = 0;  // byte-seconds
};

}  // namespace vireo::agent
