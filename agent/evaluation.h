// Learned policies against fixed baselines on the simulator: what
// tools/replay prints and what the unit tests hold the learned policies to.
//
// Each lever is judged on its own (the simulator's CPU and memory models do
// not interact): CPU rows run a CPU policy with no balloon, memory rows a
// memory policy with no pinning. Per scenario, metrics are means over seeds.
//
// Verdict against the best fixed baseline, metric by metric:
//   CPU     total run-queue wait and the latency-sensitive p99 wait per
//           wake-up: "as good" if both are within 1 % of the best
//           baseline's, "better" if also one is 5 % lower, else "worse".
//   memory  failed allocations first (a guest short of memory is worse than
//           any idle GiB): no more than the baseline with the fewest; then
//           idle memory within 1 % of the least idle baseline among those
//           with no more failures -- "better" if 5 % lower.
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

enum class Lever { Cpu, Memory };
constexpr std::string_view to_string(Lever l) { return l == Lever::Cpu ? "cpu" : "memory"; }

struct EvaluationRow {
    std::string scenario;
    Lever lever = Lever::Cpu;
    std::string policy;
    SimMetrics metrics;  // means over seeds
    std::string verdict;  // learned rows only: better / as good / worse
};

struct EvaluationPlan {
    std::vector<Scenario> scenarios;  // one entry per (scenario, seed); rows average entries of the same name
    std::vector<uint64_t> seeds;      // the simulator's seed for each entry
};

// Scenarios by name (empty: all) for each seed.
std::expected<EvaluationPlan, std::string> plan_scenarios(const std::vector<std::string>& names,
                                                          const std::vector<uint64_t>& seeds,
                                                          size_t ticks = kDefaultScenarioTicks);

// Runs every (entry x lever x policy) through `parallel_for` (one item per
// simulation; results are placed by index, so any order gives the same table).
std::vector<EvaluationRow> evaluate(const EvaluationPlan& plan, const ParallelFor& parallel_for = serial_for());

}  // namespace vireo::agent
