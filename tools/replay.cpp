// replay: the learned controller against fixed policies on a simulated
// host, over synthetic workload families or a recorded telemetry trace.
//
//   replay [--families held-out|tuning|all] [--scenario NAME] [--trace FILE.jsonl]
//          [--seeds N] [--first-seed S] [--ticks N] [--short] [--format table|json]
//          [--write-trace FILE] [--serial]
//
// With no options it prints the held-out table the README shows
// (`build/replay > table.txt` regenerates it): the held-out families, 20
// seeds each, paired per-seed differences with 95 % intervals and the
// cost-bounded verdicts of agent/evaluation.h. Every (family, seed, lever,
// arm) simulation is independent, so they run in parallel on TBB; results
// are placed by index and the statistics use no randomness, so two runs
// print identical numbers whatever the thread count. The policies were
// tuned on seed 1 of the tuning families; seeds start at 2.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/evaluation.h"
#include "agent/tbb_executor.h"
#include "agent/text.h"
#include "agent/trace.h"

using namespace vireo::agent;

namespace {

struct Options {
    std::string families = "held-out";
    std::string scenario;
    std::string trace;
    unsigned seeds = 20;
    uint64_t first_seed = 2;
    size_t ticks = kDefaultScenarioTicks;
    bool short_form = false;
    std::string format = "table";
    std::string write_trace;
    bool serial = false;
};

int bad_input(const std::string& message) {
    std::fprintf(stderr, "replay: %s\n", message.c_str());
    return 2;
}

std::string gain(const Interval& i, const char* format) {
    if (i.n == 0) return "-";
    std::string f = std::string(format) + " [" + format + ", " + format + "]";
    return strfmt(f.c_str(), i.mean, i.lo, i.hi);
}

std::string gains(Lever lever, const Comparison& c) {
    if (!judges_memory(lever)) return gain(c.cpu_gain, "%+.0f");
    if (!judges_cpu(lever)) return gain(c.memory_gain, "%+.1f");
    return gain(c.cpu_gain, "%+.0f") + " / " + gain(c.memory_gain, "%+.1f");
}

uint64_t failed_total(const EvaluationRow& r) {
    uint64_t n = 0;
    for (const auto& m : r.runs) n += m.failed_allocations;
    return n;
}

void print_table(const std::vector<EvaluationRow>& rows, const std::string& what, const Options& o,
                 const std::vector<uint64_t>& seeds) {
    std::printf("# %s; seeds %llu..%llu (%zu per family), %zu ticks of 1 s; means over seeds.\n", what.c_str(),
                (unsigned long long)seeds.front(), (unsigned long long)seeds.back(), seeds.size(), o.ticks);
    std::printf("# cpu: a CPU policy, no balloon; memory: a memory policy, no pinning; both: the two together.\n"
                "# gain: learned's advantage per seed, mean [95 %% t interval] -- cpu: baseline - learned LS p99 wait (us);\n"
                "#   memory: learned - baseline host memory saved (points); both: the two. Baseline rows: learned against that\n"
                "#   baseline; learned rows: against the best baseline (named). Verdict: worse if learned's batch throughput is\n"
                "#   over %.0f points below the baseline's, it has any failed allocation, or an interval is below 0; better if an\n"
                "#   interval is above 0; else tie. saved: host memory the balloons saved; slack: (limit - working set) / limit;\n"
                "#   under: guest-ticks with the working set above the limit; failed: failed allocations, all seeds; served: guest\n"
                "#   time run / asked for (arrivals wait for memory); regret: a hindsight oracle's saved%% - saved%% (the oracle\n"
                "#   sets each limit to the need over the next %.0f s); wsMAE, pb99: the learned estimator's working-set error and\n"
                "#   p99 pinball loss, %% of guest RAM. ablation: the ensemble against each of its members alone.\n",
                kBatchPointsBound, kOracleWindowS);
    std::printf("%-8s %-8s %-22s %9s %7s %7s %7s %7s %7s %7s %7s %7s %7s  %-34s %s\n", "family", "lever", "policy", "LSp99 us",
                "batch%", "saved%", "slack%", "under%", "failed", "served%", "regret", "wsMAE%", "pb99%", "gain [95% CI]", "verdict");
    for (const auto& r : rows) {
        const SimMetrics& m = r.metrics;
        bool cpu = r.lever == Lever::Cpu || r.lever == Lever::Both, memory = r.lever != Lever::Cpu;
        double under = m.guest_ticks ? 100.0 * double(m.under_provisioned_ticks) / double(m.guest_ticks) : 0.0;
        bool learned = r.policy == kLearned;
        std::string g = gains(r.lever, r.comparison);
        if (learned && !r.comparison.baseline.empty()) g += " vs " + r.comparison.baseline;
        std::string verdict = learned ? r.verdict : r.comparison.verdict;
        if (!r.comparison.why.empty() && verdict == "worse") verdict += " (" + r.comparison.why + ")";
        std::printf("%-8s %-8s %-22s %9s %7s %7s %7s %7s %7s %7s %7s %7s %7s  %-34s %s%s\n", r.scenario.c_str(),
                    std::string(to_string(r.lever)).c_str(), r.policy.c_str(),
                    cpu ? strfmt("%.0f", m.ls_p99_wait_us).c_str() : "-",
                    cpu ? strfmt("%.1f", m.batch_throughput * 100).c_str() : "-",
                    memory ? strfmt("%.1f", m.host_memory_saved * 100).c_str() : "-",
                    memory ? strfmt("%.1f", m.slack * 100).c_str() : "-", memory ? strfmt("%.3f", under).c_str() : "-",
                    memory ? strfmt("%llu", (unsigned long long)failed_total(r)).c_str() : "-",
                    memory ? strfmt("%.1f", m.served * 100).c_str() : "-",
                    memory ? strfmt("%.1f", (m.oracle_memory_saved - m.host_memory_saved) * 100).c_str() : "-",
                    memory && m.ws_mae >= 0 ? strfmt("%.2f", m.ws_mae * 100).c_str() : "-",
                    memory && m.ws_pinball_p99 >= 0 ? strfmt("%.3f", m.ws_pinball_p99 * 100).c_str() : "-", g.c_str(),
                    learned ? "" : "(learned vs it) ", verdict.c_str());
    }
    // The kernel-alone baseline at each placement skill the plan swept
    // (cpu lever, every family shown): its p99 and learned's paired gain.
    std::vector<double> skills;
    for (const auto& r : rows)
        for (double k : r.kernel_skill)
            if (std::find(skills.begin(), skills.end(), k) == skills.end()) skills.push_back(k);
    std::sort(skills.begin(), skills.end());
    if (skills.size() > 1) {
        std::printf("# by the simulated kernel's placement skill (cpu lever): kernel-alone LS p99 us; learned - kernel gain [95 %% CI]\n");
        for (double k : skills) {
            std::vector<double> gain_us;
            double alone = 0;
            for (size_t a = 0; a < rows.size(); ++a) {
                if (rows[a].lever != Lever::Cpu || rows[a].policy != "no-pinning") continue;
                for (size_t b = 0; b < rows.size(); ++b) {
                    if (rows[b].lever != Lever::Cpu || rows[b].policy != kLearned || rows[b].scenario != rows[a].scenario) continue;
                    for (size_t s = 0; s < rows[a].runs.size() && s < rows[b].runs.size(); ++s)
                        if (rows[a].kernel_skill[s] == k) {
                            gain_us.push_back(rows[a].runs[s].ls_p99_wait_us - rows[b].runs[s].ls_p99_wait_us);
                            alone += rows[a].runs[s].ls_p99_wait_us;
                        }
                }
            }
            if (gain_us.empty()) continue;
            std::printf("#   skill %.1f: kernel alone %.0f us; learned %s us (%zu runs)\n", k, alone / double(gain_us.size()),
                        gain(mean_interval(gain_us), "%+.0f").c_str(), gain_us.size());
        }
    }
    unsigned better = 0, tie = 0, worse = 0;
    uint64_t refused = 0;
    for (const auto& r : rows) {
        refused += r.metrics.refused_actions;
        if (r.policy != kLearned) continue;
        better += r.verdict == "better";
        tie += r.verdict == "tie";
        worse += r.verdict == "worse";
    }
    std::printf("# learned vs the best baseline: better %u, tie %u, worse %u (of %u family x lever); "
                "actions refused by hard limits: %llu\n",
                better, tie, worse, better + tie + worse, (unsigned long long)refused);
}

nlohmann::json interval_json(const Interval& i) { return {{"mean", i.mean}, {"lo", i.lo}, {"hi", i.hi}, {"n", i.n}}; }

void print_json(const std::vector<EvaluationRow>& rows, const Options& o, const std::vector<uint64_t>& seeds) {
    nlohmann::json out = {{"seeds", seeds}, {"ticks", o.ticks}, {"rows", nlohmann::json::array()}};
    for (const auto& r : rows) {
        const SimMetrics& m = r.metrics;
        nlohmann::json row = {{"family", r.scenario}, {"lever", std::string(to_string(r.lever))}, {"policy", r.policy}};
        row["wait_vcpu_s"] = m.wait_vcpu_s;
        row["ls_p99_wait_us"] = m.ls_p99_wait_us;
        row["ls_mean_wait_us"] = m.ls_mean_wait_us;
        row["batch_throughput"] = m.batch_throughput;
        row["pin_actions"] = m.pin_actions;
        row["host_memory_saved"] = m.host_memory_saved;
        row["slack"] = m.slack;
        row["under_provisioned_ticks"] = m.under_provisioned_ticks;
        row["guest_ticks"] = m.guest_ticks;
        row["failed_allocations"] = failed_total(r);
        row["host_short_ticks"] = m.host_short_ticks;
        row["served"] = m.served;
        row["oracle_memory_saved"] = m.oracle_memory_saved;
        if (m.ws_mae >= 0) row["ws_mae"] = m.ws_mae, row["ws_pinball_p99"] = m.ws_pinball_p99;
        row["admission_wait_s"] = m.admission_wait_s;
        row["idle_gib_s"] = m.idle_gib_s;
        row["swapped_gib_s"] = m.swapped_gib_s;
        row["balloon_actions"] = m.balloon_actions;
        row["refused_actions"] = m.refused_actions;
        const Comparison& c = r.comparison;
        if (!c.baseline.empty())
            row["comparison"] = {{"baseline", c.baseline},           {"cpu_gain_us", interval_json(c.cpu_gain)},
                                 {"memory_gain_points", interval_json(c.memory_gain)}, {"batch_points", c.batch_points},
                                 {"verdict", c.verdict},             {"why", c.why}};
        if (!r.verdict.empty()) row["verdict"] = r.verdict;
        out["rows"].push_back(row);
    }
    std::cout << out.dump(1) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"replay: the learned controller against fixed policies on a simulated host", "replay"};
    std::string names;
    for (auto n : scenario_names()) names += std::string(names.empty() ? "" : "|") + std::string(n);
    app.add_option("--families", o.families, "held-out | tuning | all")->default_val("held-out");
    app.add_option("--scenario", o.scenario, "one family instead: " + names);
    app.add_option("--trace", o.trace, "a recorded trace (JSON lines, vireoctl record) to replay instead");
    app.add_option("--seeds", o.seeds, "seeds per family")->default_val(20)->check(CLI::Range(1, 1000));
    app.add_option("--first-seed", o.first_seed, "first seed (1 is the tuning seed)")->default_val(2);
    app.add_option("--ticks", o.ticks, "ticks (seconds) per synthetic scenario")->default_val(kDefaultScenarioTicks)
        ->check(CLI::Range(size_t(10), size_t(1) << 20));
    app.add_flag("--short", o.short_form, "a quick look: 3 seeds of 900 ticks (unless --seeds/--ticks say otherwise)");
    app.add_option("--format", o.format, "table | json")->default_val("table");
    app.add_option("--write-trace", o.write_trace, "write the learned controller's snapshots of one scenario and seed as a trace");
    app.add_flag("--serial", o.serial, "run the simulations one after another (no TBB)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << app.help();
        return 0;
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        if (what.empty()) what = e.get_name();
        return bad_input(what + " (see 'replay --help')");
    }
    if (o.short_form) {
        if (app.count("--seeds") == 0) o.seeds = 3;
        if (app.count("--ticks") == 0) o.ticks = 900;
    }
    if (o.format != "table" && o.format != "json") return bad_input("--format: '" + o.format + "' is not table or json");
    if (o.families != "held-out" && o.families != "tuning" && o.families != "all")
        return bad_input("--families: '" + o.families + "' is not held-out, tuning or all");
    if (!o.trace.empty() && !o.scenario.empty()) return bad_input("--trace and --scenario exclude each other");

    std::vector<uint64_t> seeds;
    for (unsigned i = 0; i < o.seeds; ++i) seeds.push_back(o.first_seed + i);
    EvaluationPlan plan;
    std::string what;
    if (!o.trace.empty()) {
        auto trace = read_trace_file(o.trace);
        if (!trace) return bad_input(trace.error());
        auto scenario = scenario_from_trace(*trace, "trace");
        if (!scenario) return bad_input(o.trace + ": " + scenario.error());
        o.ticks = scenario->ticks;
        for (uint64_t seed : seeds) {
            plan.scenarios.push_back(*scenario);
            plan.seeds.push_back(seed);
        }
        what = "a recorded trace";
    } else {
        std::vector<std::string> wanted;
        if (!o.scenario.empty()) {
            wanted.push_back(o.scenario);
            what = "family " + o.scenario;
        } else {
            if (o.families != "held-out")
                for (auto n : tuning_family_names()) wanted.emplace_back(n);
            if (o.families != "tuning")
                for (auto n : held_out_family_names()) wanted.emplace_back(n);
            what = o.families == "held-out" ? "held-out families (never used for tuning)"
                   : o.families == "tuning" ? "tuning families (the policies' constants were chosen on their seed 1)"
                                            : "tuning and held-out families";
        }
        auto p = plan_scenarios(wanted, seeds, o.ticks);
        if (!p) return bad_input("--scenario: " + p.error());
        plan = std::move(*p);
    }

    if (!o.write_trace.empty()) {
        if (plan.scenarios.size() != 1) return bad_input("--write-trace needs one scenario (--scenario NAME) and --seeds 1");
        std::ofstream out(o.write_trace);
        if (!out) return bad_input(o.write_trace + ": cannot create");
        std::vector<vireo::agent::Snapshot> record;
        SimOptions options;
        options.seed = plan.seeds.front();
        simulate(plan.scenarios.front(), kLearned, kLearned, options, &record);
        write_trace(out, record);
        if (!out.flush()) return bad_input(o.write_trace + ": write failed");
    }

    auto rows = evaluate(plan, o.serial ? serial_for() : tbb_parallel_for());
    if (o.format == "json") print_json(rows, o, seeds);
    else print_table(rows, what, o, seeds);
    return 0;
}
