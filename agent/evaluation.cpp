#include "agent/evaluation.h"

#include <algorithm>
#include <cmath>

#include "agent/balloon_policy.h"
#include "agent/baselines.h"
#include "agent/controller.h"
#include "agent/pinning_policy.h"
#include "agent/text.h"

namespace vireo::agent {

const std::vector<std::string_view>& cpu_policy_names() {
    static const std::vector<std::string_view> names = {kLearned, "no-pinning", "round-robin", "class-aware"};
    return names;
}

const std::vector<std::string_view>& memory_policy_names() {
    static const std::vector<std::string_view> names = {kLearned,    "no-balloon",   "fixed-target",
                                                        "mom-rules", "esx-idle-tax", "tmo-senpai"};
    return names;
}

std::expected<std::unique_ptr<Policy>, std::string> make_cpu_policy(std::string_view name) {
    if (name == kLearned) return std::make_unique<PinningPolicy>();
    if (name == "no-pinning") return std::make_unique<NoPinning>();
    if (name == "round-robin") return std::make_unique<RoundRobinPinning>();
    if (name == "class-aware") return std::make_unique<ClassAwarePinning>();
    return std::unexpected("unknown CPU policy '" + std::string(name) + "'");
}

std::expected<std::unique_ptr<Policy>, std::string> make_memory_policy(std::string_view name) {
    if (name == kLearned) return std::make_unique<BalloonPolicy>();
    if (name.starts_with("member-")) {
        auto members = EstimatorEnsembleParams::default_members();
        size_t k = name.size() == 8 ? size_t(name[7] - '1') : members.size();
        if (k >= members.size()) return std::unexpected("unknown memory policy '" + std::string(name) + "'");
        BalloonPolicyParams p;
        p.ensemble.members = {members[k]};
        return std::make_unique<BalloonPolicy>(p);
    }
    if (name == "no-balloon") return std::make_unique<NoBalloon>();
    if (name == "fixed-target") return std::make_unique<FixedBalloon>();
    if (name == "mom-rules") return std::make_unique<MomBalloon>();
    if (name == "esx-idle-tax") return std::make_unique<IdleTaxBalloon>();
    if (name == "tmo-senpai") return std::make_unique<PsiReclaim>();
    return std::unexpected("unknown memory policy '" + std::string(name) + "'");
}

const std::vector<Arm>& arms(Lever lever) {
    static const std::vector<Arm> cpu = [] {
        std::vector<Arm> a;
        for (auto p : cpu_policy_names()) a.push_back({std::string(p), p, "no-balloon"});
        return a;
    }();
    static const std::vector<Arm> memory = [] {
        std::vector<Arm> a;
        for (auto p : memory_policy_names()) a.push_back({std::string(p), "no-pinning", p});
        return a;
    }();
    static const std::vector<Arm> both = {
        {std::string(kLearned), kLearned, kLearned},
        {"no-pinning+no-balloon", "no-pinning", "no-balloon"},
        {"class-aware+mom-rules", "class-aware", "mom-rules"},
        {"class-aware+tmo-senpai", "class-aware", "tmo-senpai"},
    };
    static const std::vector<Arm> ablation = {
        {std::string(kLearned), "no-pinning", kLearned}, {"member-1", "no-pinning", "member-1"},
        {"member-2", "no-pinning", "member-2"},          {"member-3", "no-pinning", "member-3"},
        {"member-4", "no-pinning", "member-4"},          {"member-5", "no-pinning", "member-5"},
        {"member-6", "no-pinning", "member-6"},
    };
    return lever == Lever::Cpu ? cpu : lever == Lever::Memory ? memory : lever == Lever::Both ? both : ablation;
}

SimMetrics simulate(const Scenario& scenario, std::string_view cpu_policy, std::string_view memory_policy,
                    const SimOptions& options, std::vector<Snapshot>* record) {
    auto cpu = make_cpu_policy(cpu_policy);
    auto memory = make_memory_policy(memory_policy);
    if (!cpu || !memory) return {};
    Controller controller(std::move(*cpu), std::move(*memory));
    Simulator sim(scenario, options);
    // The learned balloon policy's prediction error: each guest's estimate
    // after this tick against the working set of the next (pinball loss at
    // p99: 0.99 (y - q) when short, 0.01 (q - y) when over).
    const auto* balloon = dynamic_cast<const BalloonPolicy*>(&controller.memory_policy());
    double abs_err = 0, pinball = 0;
    size_t samples = 0;
    std::vector<std::pair<std::string, double>> estimates;  // (guest, estimate as a share of RAM)
    while (!sim.done()) {
        Snapshot snap = sim.snapshot();
        for (const auto& [name, estimate] : estimates) {
            auto it = std::find_if(snap.guests.begin(), snap.guests.end(), [&](const GuestSample& g) { return g.name == name; });
            auto need = sim.working_set_bytes(name);
            if (it == snap.guests.end() || !need || it->ram_bytes == 0) continue;
            double y = *need / double(it->ram_bytes), err = y - estimate;
            abs_err += std::abs(err);
            pinball += err > 0 ? 0.99 * err : -0.01 * err;
            ++samples;
        }
        for (const Decision& d : controller.tick(snap))
            if (!d.advisory) sim.submit(d.action);
        estimates.clear();
        if (balloon)
            for (const auto& g : snap.guests)
                if (const auto* e = balloon->ensemble(g.name); e && e->samples() > 0 && g.ram_bytes)
                    estimates.emplace_back(g.name, double(e->estimate()) / double(g.ram_bytes));
        if (record) record->push_back(std::move(snap));
        sim.step();
    }
    SimMetrics m = sim.metrics();
    if (balloon && samples) {
        m.ws_mae = abs_err / double(samples);
        m.ws_pinball_p99 = pinball / double(samples);
    }
    return m;
}

double kernel_skill_for(std::string_view family, uint64_t seed) {
    const auto& tuning = tuning_family_names();
    if (std::find(tuning.begin(), tuning.end(), family) != tuning.end()) return kTuningKernelSkill;
    return kKernelSkills[seed % std::size(kKernelSkills)];
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
            plan.kernel_skill.push_back(kernel_skill_for(name, seed));
        }
    }
    return plan;
}

Comparison judge(const VerdictInput& in) {
    Comparison c;
    c.cpu_gain = in.cpu_gain;
    c.memory_gain = in.memory_gain;
    c.batch_points = (in.learned_batch - in.baseline_batch) * 100;
    c.learned_failed = in.learned_failed;
    bool cpu = judges_cpu(in.lever), memory = judges_memory(in.lever);
    if (c.batch_points < -kBatchPointsBound) c.why = strfmt("batch throughput %+.1f points", c.batch_points);
    if (in.learned_failed > 0) c.why += std::string(c.why.empty() ? "" : ", ") + std::to_string(in.learned_failed) + " failed allocations";
    bool below = (cpu && in.cpu_gain.excludes_zero() && in.cpu_gain.hi < 0) ||
                 (memory && in.memory_gain.excludes_zero() && in.memory_gain.hi < 0);
    bool above = (cpu && in.cpu_gain.excludes_zero() && in.cpu_gain.lo > 0) ||
                 (memory && in.memory_gain.excludes_zero() && in.memory_gain.lo > 0);
    if (below && c.why.empty()) c.why = "interval below zero";
    c.verdict = !c.why.empty() ? "worse" : above ? "better" : "tie";
    return c;
}

namespace {

SimMetrics mean(const std::vector<SimMetrics>& runs) {
    SimMetrics m{};
    if (runs.empty()) return m;
    double n = double(runs.size());
    m.batch_throughput = 0;
    m.served = 0;
    m.ws_mae = m.ws_pinball_p99 = 0;
    double failed = 0, pins = 0, balloons = 0, refused = 0, siblings = 0, ooms = 0, ticks = 0, under = 0;
    static constexpr double SimMetrics::*kMeans[] = {
        &SimMetrics::wait_vcpu_s,         &SimMetrics::ls_p99_wait_us, &SimMetrics::ls_mean_wait_us,
        &SimMetrics::batch_throughput,    &SimMetrics::idle_gib_s,     &SimMetrics::swapped_gib_s,
        &SimMetrics::host_memory_saved,   &SimMetrics::oracle_memory_saved, &SimMetrics::ws_mae,
        &SimMetrics::ws_pinball_p99,      &SimMetrics::slack,          &SimMetrics::served,
        &SimMetrics::admission_wait_s,
    };
    for (const auto& r : runs) {
        for (auto field : kMeans) m.*field += r.*field / n;
        m.host_short_ticks += r.host_short_ticks;
        failed += double(r.failed_allocations);
        pins += double(r.pin_actions);
        balloons += double(r.balloon_actions);
        refused += double(r.refused_actions);
        siblings += double(r.busy_siblings_pinned_together);
        ooms += double(r.oom_deflates);
        ticks += double(r.guest_ticks);
        under += double(r.under_provisioned_ticks);
    }
    // Counts: totals over seeds would grow with --seeds; means keep rows comparable.
    m.failed_allocations = uint64_t(failed / n + 0.5);
    m.pin_actions = uint64_t(pins / n + 0.5);
    m.balloon_actions = uint64_t(balloons / n + 0.5);
    m.refused_actions = uint64_t(refused);  // any refusal at all must show
    m.busy_siblings_pinned_together = uint64_t(siblings);
    m.oom_deflates = uint64_t(ooms / n + 0.5);
    m.guest_ticks = uint64_t(ticks);  // totals: their ratio is the share of under-provisioned guest-ticks
    m.under_provisioned_ticks = uint64_t(under);
    // Failures must never round to zero: a single one counts.
    if (failed > 0 && m.failed_allocations == 0) m.failed_allocations = 1;
    return m;
}

uint64_t total_failed(const std::vector<SimMetrics>& runs) {
    uint64_t n = 0;
    for (const auto& r : runs) n += r.failed_allocations;
    return n;
}

Comparison compare(Lever lever, const EvaluationRow& learned, const EvaluationRow& baseline) {
    std::vector<double> cpu, memory;
    for (size_t s = 0; s < learned.runs.size() && s < baseline.runs.size(); ++s) {
        cpu.push_back(baseline.runs[s].ls_p99_wait_us - learned.runs[s].ls_p99_wait_us);
        memory.push_back((learned.runs[s].host_memory_saved - baseline.runs[s].host_memory_saved) * 100);
    }
    VerdictInput in{lever, mean_interval(cpu), mean_interval(memory), learned.metrics.batch_throughput,
                    baseline.metrics.batch_throughput, total_failed(learned.runs)};
    Comparison c = judge(in);
    c.baseline = baseline.policy;
    return c;
}

// Index (into rows[first+1 ..]) of the best baseline, as the header says.
size_t best_baseline(Lever lever, const std::vector<EvaluationRow>& rows, size_t first, size_t end) {
    double best_batch = 0;
    bool any_clean = false;
    for (size_t r = first + 1; r < end; ++r) {
        best_batch = std::max(best_batch, rows[r].metrics.batch_throughput);
        any_clean |= total_failed(rows[r].runs) == 0;
    }
    size_t best = first + 1;
    double best_score = -1e300;
    for (size_t r = first + 1; r < end; ++r) {
        const SimMetrics& m = rows[r].metrics;
        bool batch_ok = m.batch_throughput * 100 >= best_batch * 100 - kBatchPointsBound;
        bool clean = !any_clean || total_failed(rows[r].runs) == 0;
        double score = judges_cpu(lever) ? -m.ls_p99_wait_us : m.host_memory_saved;
        bool eligible = lever == Lever::Cpu ? batch_ok : lever == Lever::Both ? batch_ok && clean : clean;
        if (eligible && score > best_score) best_score = score, best = r;
    }
    return best;
}

}  // namespace

std::vector<EvaluationRow> evaluate(const EvaluationPlan& plan, const ParallelFor& parallel_for, const std::vector<Lever>& levers) {
    struct Job {
        size_t entry;
        Lever lever;
        size_t arm;
    };
    std::vector<Job> jobs;
    for (size_t e = 0; e < plan.scenarios.size(); ++e)
        for (Lever lever : levers)
            for (size_t a = 0; a < arms(lever).size(); ++a) jobs.push_back({e, lever, a});
    std::vector<SimMetrics> results(jobs.size());
    parallel_for(jobs.size(), [&](size_t j) {
        const Job& job = jobs[j];
        SimOptions options;
        options.seed = plan.seeds[job.entry];
        if (job.entry < plan.kernel_skill.size()) options.kernel_smart_placement = plan.kernel_skill[job.entry];
        const Arm& arm = arms(job.lever)[job.arm];
        results[j] = simulate(plan.scenarios[job.entry], arm.cpu, arm.memory, options);
    });

    // Rows in plan order of families, then lever, then arm; runs in plan (seed) order.
    std::vector<std::string> order;
    for (const auto& s : plan.scenarios)
        if (std::find(order.begin(), order.end(), s.name) == order.end()) order.push_back(s.name);
    std::vector<EvaluationRow> rows;
    for (const auto& name : order) {
        for (Lever lever : levers) {
            size_t first = rows.size();
            for (size_t a = 0; a < arms(lever).size(); ++a) {
                EvaluationRow row{name, lever, arms(lever)[a].name, {}, {}, {}, {}, ""};
                for (size_t j = 0; j < jobs.size(); ++j)
                    if (jobs[j].lever == lever && jobs[j].arm == a && plan.scenarios[jobs[j].entry].name == name) {
                        row.runs.push_back(results[j]);
                        row.kernel_skill.push_back(jobs[j].entry < plan.kernel_skill.size() ? plan.kernel_skill[jobs[j].entry]
                                                                                             : SimOptions{}.kernel_smart_placement);
                    }
                row.metrics = mean(row.runs);
                rows.push_back(std::move(row));
            }
            for (size_t r = first + 1; r < rows.size(); ++r) rows[r].comparison = compare(lever, rows[first], rows[r]);
            if (rows.size() > first + 1) {
                rows[first].comparison = rows[best_baseline(lever, rows, first, rows.size())].comparison;
                rows[first].verdict = rows[first].comparison.verdict;
            }
        }
    }
    return rows;
}

}  // namespace vireo::agent
