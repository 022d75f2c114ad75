#include "agent/evaluation.h"

#include <algorithm>
#include <map>

#include "agent/balloon_policy.h"
#include "agent/baselines.h"
#include "agent/controller.h"
#include "agent/pinning_policy.h"

namespace vireo::agent {

const std::vector<std::string_view>& cpu_policy_names() {
    static const std::vector<std::string_view> names = {kLearned, "no-pinning", "round-robin"};
    return names;
}

const std::vector<std::string_view>& memory_policy_names() {
    static const std::vector<std::string_view> names = {kLearned, "no-balloon", "fixed-target", "mom-rules"};
    return names;
}

std::expected<std::unique_ptr<Policy>, std::string> make_cpu_policy(std::string_view name) {
    if (name == kLearned) return std::make_unique<PinningPolicy>();
    if (name == "no-pinning") return std::make_unique<NoPinning>();
    if (name == "round-robin") return std::make_unique<RoundRobinPinning>();
    return std::unexpected("unknown CPU policy '" + std::string(name) + "'");
}

std::expected<std::unique_ptr<Policy>, std::string> make_memory_policy(std::string_view name) {
    if (name == kLearned) return std::make_unique<BalloonPolicy>();
    if (name == "no-balloon") return std::make_unique<NoBalloon>();
    if (name == "fixed-target") return std::make_unique<FixedBalloon>();
    if (name == "mom-rules") return std::make_unique<MomBalloon>();
    return std::unexpected("unknown memory policy '" + std::string(name) + "'");
}

SimMetrics simulate(const Scenario& scenario, std::string_view cpu_policy, std::string_view memory_policy,
                    const SimOptions& options, std::vector<Snapshot>* record) {
    auto cpu = make_cpu_policy(cpu_policy);
    auto memory = make_memory_policy(memory_policy);
    if (!cpu || !memory) return {};
    Controller controller(std::move(*cpu), std::move(*memory));
    Simulator sim(scenario, options);
    while (!sim.done()) {
        Snapshot snap = sim.snapshot();
        for (const Decision& d : controller.tick(snap))
            if (!d.advisory) sim.submit(d.action);
        if (record) record->push_back(std::move(snap));
        sim.step();
    }
    return sim.metrics();
}

std::expected<EvaluationPlan, std::string> plan_scenarios(const std::vector<std::string>& names,
                                                          const std::vector<uint64_t>& seeds, size_t ticks) {
    EvaluationPlan plan;
    std::vector<std::string> wanted = names;
    if (wanted.empty())
        for (auto n : scenario_names()) wanted.emplace_back(n);
    for (const auto& name : wanted) {
        for (uint64_t seed : seeds) {
            auto s = make_scenario(name, seed, ticks);
            if (!s) return std::unexpected(s.error());
            plan.scenarios.push_back(std::move(*s));
            plan.seeds.push_back(seed);
        }
    }
    return plan;
}

namespace {

SimMetrics mean(const std::vector<SimMetrics>& runs) {
    SimMetrics m{};
    if (runs.empty()) return m;
    double n = double(runs.size());
    m.batch_throughput = 0;
    double failed = 0, pins = 0, balloons = 0, refused = 0, siblings = 0, ooms = 0;
    for (const auto& r : runs) {
        m.wait_vcpu_s += r.wait_vcpu_s / n;
        m.ls_p99_wait_us += r.ls_p99_wait_us / n;
        m.ls_mean_wait_us += r.ls_mean_wait_us / n;
        m.batch_throughput += r.batch_throughput / n;
        m.idle_gib_s += r.idle_gib_s / n;
        m.swapped_gib_s += r.swapped_gib_s / n;
        failed += double(r.failed_allocations);
        pins += double(r.pin_actions);
        balloons += double(r.balloon_actions);
        refused += double(r.refused_actions);
        siblings += double(r.busy_siblings_pinned_together);
        ooms += double(r.oom_deflates);
    }
    // Counts: totals over seeds would grow with --seeds; means keep rows comparable.
    m.failed_allocations = uint64_t(failed / n + 0.5);
    m.pin_actions = uint64_t(pins / n + 0.5);
    m.balloon_actions = uint64_t(balloons / n + 0.5);
    m.refused_actions = uint64_t(refused);  // any refusal at all must show
    m.busy_siblings_pinned_together = uint64_t(siblings);
    m.oom_deflates = uint64_t(ooms / n + 0.5);
    // Failures must never round to zero: a single one counts.
    if (failed > 0 && m.failed_allocations == 0) m.failed_allocations = 1;
    return m;
}

bool within(double ours, double best, double tolerance) { return ours <= best * (1 + tolerance) + 1e-9; }

std::string cpu_verdict(const SimMetrics& learned, const std::vector<const SimMetrics*>& baselines) {
    double best_wait = 1e300, best_p99 = 1e300;
    for (auto* b : baselines) {
        best_wait = std::min(best_wait, b->wait_vcpu_s);
        best_p99 = std::min(best_p99, b->ls_p99_wait_us);
    }
    if (!within(learned.wait_vcpu_s, best_wait, 0.01) || !within(learned.ls_p99_wait_us, best_p99, 0.01)) return "worse";
    if (learned.wait_vcpu_s < best_wait * 0.95 || learned.ls_p99_wait_us < best_p99 * 0.95) return "better";
    return "as good";
}

std::string memory_verdict(const SimMetrics& learned, const std::vector<const SimMetrics*>& baselines) {
    uint64_t fewest = UINT64_MAX;
    for (auto* b : baselines) fewest = std::min(fewest, b->failed_allocations);
    if (learned.failed_allocations > fewest) return "worse";
    double best_idle = 1e300;
    for (auto* b : baselines)
        if (b->failed_allocations <= learned.failed_allocations) best_idle = std::min(best_idle, b->idle_gib_s);
    if (!within(learned.idle_gib_s, best_idle, 0.01)) return "worse";
    return learned.idle_gib_s < best_idle * 0.95 ? "better" : "as good";
}

}  // namespace

std::vector<EvaluationRow> evaluate(const EvaluationPlan& plan, const ParallelFor& parallel_for) {
    struct Job {
        size_t entry;
        Lever lever;
        std::string_view policy;
    };
    std::vector<Job> jobs;
    for (size_t e = 0; e < plan.scenarios.size(); ++e) {
        for (auto p : cpu_policy_names()) jobs.push_back({e, Lever::Cpu, p});
        for (auto p : memory_policy_names()) jobs.push_back({e, Lever::Memory, p});
    }
    std::vector<SimMetrics> results(jobs.size());
    parallel_for(jobs.size(), [&](size_t j) {
        const Job& job = jobs[j];
        SimOptions options;
        options.seed = plan.seeds[job.entry];
        results[j] = job.lever == Lever::Cpu ? simulate(plan.scenarios[job.entry], job.policy, "no-balloon", options)
                                             : simulate(plan.scenarios[job.entry], "no-pinning", job.policy, options);
    });

    // Rows in plan order of scenario names, then lever, then policy.
    std::vector<std::string> order;
    for (const auto& s : plan.scenarios)
        if (std::find(order.begin(), order.end(), s.name) == order.end()) order.push_back(s.name);
    std::vector<EvaluationRow> rows;
    for (const auto& name : order) {
        for (Lever lever : {Lever::Cpu, Lever::Memory}) {
            const auto& names = lever == Lever::Cpu ? cpu_policy_names() : memory_policy_names();
            size_t first = rows.size();
            for (auto policy : names) {
                std::vector<SimMetrics> runs;
                for (size_t j = 0; j < jobs.size(); ++j)
                    if (jobs[j].lever == lever && jobs[j].policy == policy && plan.scenarios[jobs[j].entry].name == name)
                        runs.push_back(results[j]);
                rows.push_back({name, lever, std::string(policy), mean(runs), ""});
            }
            std::vector<const SimMetrics*> baselines;
            for (size_t r = first + 1; r < rows.size(); ++r) baselines.push_back(&rows[r].metrics);
            rows[first].verdict = lever == Lever::Cpu ? cpu_verdict(rows[first].metrics, baselines)
                                                      : memory_verdict(rows[first].metrics, baselines);
        }
    }
    return rows;
}

}  // namespace vireo::agent
