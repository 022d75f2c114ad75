// replay: the learned controller against fixed policies on a simulated
// host, over synthetic scenarios or a recorded telemetry trace.
//
//   replay [--scenario NAME|all] [--trace FILE.jsonl] [--seeds N] [--first-seed S]
//          [--ticks N] [--format table|json] [--write-trace FILE] [--serial]
//
// Every (scenario, seed, policy) simulation is independent, so they run in
// parallel on TBB; results are placed by index, so the output is the same
// whatever the thread count. Policies were tuned on seed 1; evaluation
// starts at seed 2 (--first-seed) so the table never scores what was tuned.
#include <CLI/CLI.hpp>

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
    std::string scenario = "all";
    std::string trace;
    unsigned seeds = 5;
    uint64_t first_seed = 2;
    size_t ticks = kDefaultScenarioTicks;
    std::string format = "table";
    std::string write_trace;
    bool serial = false;
};

int bad_input(const std::string& message) {
    std::fprintf(stderr, "replay: %s\n", message.c_str());
    return 2;
}

std::string cell(double v, const char* format, bool applies) { return applies ? strfmt(format, v) : std::string("-"); }

void print_table(const std::vector<EvaluationRow>& rows, const Options& o, const std::vector<uint64_t>& seeds) {
    std::printf("# seeds %llu..%llu (policies tuned on seed 1), %zu ticks; means over seeds. "
                "cpu rows: no balloon; memory rows: no pinning.\n",
                (unsigned long long)seeds.front(), (unsigned long long)seeds.back(), o.ticks);
    std::printf("%-8s %-6s %-12s %12s %11s %8s %12s %7s %10s %7s  %s\n", "scenario", "lever", "policy", "wait vCPU-s",
                "LS p99 us", "batch %", "idle GiB-s", "failed", "swap GiB-s", "actions", "verdict");
    for (const auto& r : rows) {
        bool cpu = r.lever == Lever::Cpu;
        const SimMetrics& m = r.metrics;
        std::printf("%-8s %-6s %-12s %12s %11s %8s %12s %7s %10s %7llu  %s\n", r.scenario.c_str(),
                    std::string(to_string(r.lever)).c_str(), r.policy.c_str(), cell(m.wait_vcpu_s, "%.1f", cpu).c_str(),
                    cell(m.ls_p99_wait_us, "%.0f", cpu).c_str(), cell(m.batch_throughput * 100, "%.1f", cpu).c_str(),
                    cell(m.idle_gib_s, "%.0f", !cpu).c_str(), cell(double(m.failed_allocations), "%.0f", !cpu).c_str(),
                    cell(m.swapped_gib_s, "%.1f", !cpu).c_str(),
                    (unsigned long long)(cpu ? m.pin_actions : m.balloon_actions), r.verdict.c_str());
    }
    unsigned better = 0, same = 0, worse = 0;
    uint64_t refused = 0, siblings = 0;
    for (const auto& r : rows) {
        better += r.verdict == "better";
        same += r.verdict == "as good";
        worse += r.verdict == "worse";
        refused += r.metrics.refused_actions;
        siblings += r.metrics.busy_siblings_pinned_together;
    }
    std::printf("# learned vs the best fixed baseline: better %u, as good %u, worse %u (of %u scenario x lever); "
                "actions refused by hard limits: %llu\n",
                better, same, worse, better + same + worse, (unsigned long long)refused);
    (void)siblings;
}

void print_json(const std::vector<EvaluationRow>& rows, const Options& o, const std::vector<uint64_t>& seeds) {
    nlohmann::json out = {{"seeds", seeds}, {"ticks", o.ticks}, {"rows", nlohmann::json::array()}};
    for (const auto& r : rows) {
        const SimMetrics& m = r.metrics;
        nlohmann::json row = {{"scenario", r.scenario}, {"lever", std::string(to_string(r.lever))}, {"policy", r.policy}};
        if (r.lever == Lever::Cpu) {
            row["wait_vcpu_s"] = m.wait_vcpu_s;
            row["ls_p99_wait_us"] = m.ls_p99_wait_us;
            row["ls_mean_wait_us"] = m.ls_mean_wait_us;
            row["batch_throughput"] = m.batch_throughput;
            row["pin_actions"] = m.pin_actions;
        } else {
            row["idle_gib_s"] = m.idle_gib_s;
            row["failed_allocations"] = m.failed_allocations;
            row["swapped_gib_s"] = m.swapped_gib_s;
            row["balloon_actions"] = m.balloon_actions;
        }
        row["refused_actions"] = m.refused_actions;
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
    app.add_option("--scenario", o.scenario, "synthetic scenario: " + names + "|all")->default_val("all");
    app.add_option("--trace", o.trace, "a recorded trace (JSON lines, vireoctl record) to replay instead");
    app.add_option("--seeds", o.seeds, "how many seeds to average over")->default_val(5)->check(CLI::Range(1, 1000));
    app.add_option("--first-seed", o.first_seed, "first seed (1 is the tuning seed)")->default_val(2);
    app.add_option("--ticks", o.ticks, "ticks (seconds) per synthetic scenario")->default_val(kDefaultScenarioTicks)
        ->check(CLI::Range(size_t(10), size_t(1) << 20));
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
    if (o.format != "table" && o.format != "json") return bad_input("--format: '" + o.format + "' is not table or json");
    if (!o.trace.empty() && o.scenario != "all") return bad_input("--trace and --scenario exclude each other");

    std::vector<uint64_t> seeds;
    for (unsigned i = 0; i < o.seeds; ++i) seeds.push_back(o.first_seed + i);
    EvaluationPlan plan;
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
    } else {
        std::vector<std::string> wanted;
        if (o.scenario != "all") wanted.push_back(o.scenario);
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
    else print_table(rows, o, seeds);
    return 0;
}
