// Learned policies against fixed baselines on the simulator: what
// tools/replay prints and what the unit tests hold the learned policies to.
//
// Protocol. Families are tuning or held-out (agent/scenarios.h); each runs
// for every seed of the plan (>= 20 for the published table). Levers:
//   cpu     a CPU policy with no balloon
//   memory  a memory policy with no pinning (the kernel places vCPUs)
//   both    a CPU and a memory policy together
// Per seed the learned arm and a baseline arm see the same scenario and the
// same kernel noise, so their difference is paired; a row's "gain" is the
// mean of those per-seed differences with its 95 % Student-t interval
// (agent/statistics.h), in the learned side's favour:
//   cpu     baseline - learned latency-sensitive p99 run-queue wait (us)
//   memory  learned - baseline host memory saved (points of guest RAM)
//   both    both of those
// Verdict of learned against a baseline (judge()): "worse" when the learned
// side's cost is out of bounds -- its batch throughput more than 2 points
// below the baseline's, or any failed guest allocation -- or when an
// interval lies wholly below zero; else "better" when an interval lies
// wholly above zero; else "tie". Against "the best baseline": for cpu the
// lowest mean p99 among baselines whose batch throughput is within 2 points
// of the best baseline throughput; for memory the most memory saved among
// baselines with no failed allocation (all if none has none); for both,
// the lowest p99 among baselines within those two bounds.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/executor.h"
#include "agent/policy.h"
#include "agent/scenarios.h"
#include "agent/simulator.h"
#include "agent/statistics.h"

namespace vireo::agent {

inline constexpr std::string_view kLearned = "learned";

const std::vector<std::string_view>& cpu_policy_names();     // learned first
const std::vector<std::string_view>& memory_policy_names();  // learned first
std::expected<std::unique_ptr<Policy>, std::string> make_cpu_policy(std::string_view name);
std::expected<std::unique_ptr<Policy>, std::string> make_memory_policy(std::string_view name);

// One simulation: the controller with these two policies against the
// simulated host, until the scenario ends. `record`: every snapshot, for a trace.
SimMetrics simulate(const Scenario& scenario, std::string_view cpu_policy, std::string_view memory_policy,
                    const SimOptions& options, std::vector<Snapshot>* record = nullptr);

// Ablation: the memory lever again, the learned ensemble against each of
// its members alone (memory policies member-1 .. member-6), judged as memory.
enum class Lever { Cpu, Memory, Both, Ablation };
constexpr std::string_view to_string(Lever l) {
    return l == Lever::Cpu ? "cpu" : l == Lever::Memory ? "memory" : l == Lever::Both ? "both" : "ablation";
}
constexpr bool judges_cpu(Lever l) { return l == Lever::Cpu || l == Lever::Both; }
constexpr bool judges_memory(Lever l) { return l != Lever::Cpu; }

// What runs in a row: a CPU and a memory policy.
struct Arm {
    std::string name;
    std::string_view cpu, memory;
};
const std::vector<Arm>& arms(Lever lever);  // learned first

inline constexpr double kBatchPointsBound = 2.0;  // the learned side may lose this much batch throughput, in points

struct Comparison {
    std::string baseline;  // which baseline this is against
    Interval cpu_gain;     // us of LS p99 wait (cpu, both)
    Interval memory_gain;  // points of memory saved (memory, both)
    double batch_points = 0;  // learned - baseline batch throughput, points (mean)
    uint64_t learned_failed = 0;
    std::string verdict;  // better / tie / worse
    std::string why;      // for worse: what was out of bounds
};

struct VerdictInput {
    Lever lever = Lever::Cpu;
    Interval cpu_gain, memory_gain;
    double learned_batch = 1, baseline_batch = 1;  // throughput shares
    uint64_t learned_failed = 0;
};
// The rule above, on its own so a test can hold it to its bounds.
Comparison judge(const VerdictInput& in);

struct EvaluationRow {
    std::string scenario;  // the family
    Lever lever = Lever::Cpu;
    std::string policy;            // the arm
    SimMetrics metrics;            // means over seeds (counts: means, rounded; any failure shows)
    std::vector<SimMetrics> runs;  // per seed, in plan order
    std::vector<double> kernel_skill;  // the simulated kernel's placement skill of each run
    Comparison comparison;         // learned rows: against the best baseline; baseline rows: learned against this one
    std::string verdict;           // learned rows only
};

struct EvaluationPlan {
    std::vector<Scenario> scenarios;  // one entry per (family, seed); rows pair entries of the same family by seed
    std::vector<uint64_t> seeds;      // the simulator's seed for each entry
    std::vector<double> kernel_skill; // the simulated kernel's placement skill for each entry (empty: SimOptions')
};

// How well the simulated kernel places unpinned vCPUs (SimOptions::
// kernel_smart_placement). The tuning families keep the 0.7 they were tuned
// on (which the learned pinning's own model also assumes); the held-out
// families sweep it over seeds, 0.5 to 1.0, so neither the kernel-alone
// baseline nor the learned policy is scored against one value it shares.
inline constexpr double kTuningKernelSkill = 0.7;
inline constexpr double kKernelSkills[] = {0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
double kernel_skill_for(std::string_view family, uint64_t seed);

// Scenarios by name (empty: all) for each seed.
std::expected<EvaluationPlan, std::string> plan_scenarios(const std::vector<std::string>& names,
                                                          const std::vector<uint64_t>& seeds,
                                                          size_t ticks = kDefaultScenarioTicks);

// Runs every (entry x lever x arm) through `parallel_for` (one item per
// simulation; results are placed by index, so any order gives the same table).
std::vector<EvaluationRow> evaluate(const EvaluationPlan& plan, const ParallelFor& parallel_for = serial_for(),
                                    const std::vector<Lever>& levers = {Lever::Cpu, Lever::Memory, Lever::Both, Lever::Ablation});

}  // namespace vireo::agent
