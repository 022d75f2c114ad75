// controller_tick: the learned controller's cost per tick on synthetic
// telemetry of 16 guests x 4 vCPUs on 16 host CPUs, with the serial and the
// TBB executor side by side. Prints one JSON result line per executor in
// run-benchmarks' format; the baseline is the budget the issue sets: 1 % of
// one core at 1 s ticks = 10,000 us per tick.
//
//   controller_tick [TICKS] [ROUNDS]     (defaults 3000 ticks, 5 rounds; median round)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/controller.h"
#include "agent/tbb_executor.h"

using namespace vireo::agent;

namespace {

constexpr unsigned kGuests = 16, kVcpus = 4, kCpus = 16;
constexpr uint64_t kRam = 2ull << 30;
constexpr double kBudgetUs = 10'000;  // 1 % of one core at 1 s ticks

// Deterministic telemetry: each vCPU has its own demand and wait level, with
// a wobble so the models keep learning, and the balloon follows the targets.
struct SyntheticHost {
    Snapshot snap;
    uint64_t tick = 0;
    SyntheticHost() {
        snap.mode = vireo::ControllerMode::Auto;
        snap.host_mem_total_bytes = uint64_t(kGuests) * kRam;
        snap.host_mem_available_bytes = snap.host_mem_total_bytes / 5;
        for (unsigned c = 0; c < kCpus; ++c) snap.host_cpus.push_back({c, 0});
        for (unsigned g = 0; g < kGuests; ++g) {
            GuestSample gs;
            gs.name = "guest" + std::to_string(g);
            gs.ram_bytes = kRam;
            gs.configured_class = g % 3 == 0 ? GuestClass::LatencySensitive : GuestClass::Unknown;
            gs.balloon = BalloonSample{};
            gs.balloon->stats.major_faults = 0;
            gs.balloon->stats.swap_in = 0;
            for (unsigned v = 0; v < kVcpus; ++v) gs.vcpus.push_back({v, int32_t(1000 + g * kVcpus + v)});
            snap.guests.push_back(std::move(gs));
        }
    }
    const Snapshot& next() {
        ++tick;
        snap.timestamp_ns = tick * 1'000'000'000ull;
        for (unsigned c = 0; c < kCpus; ++c) snap.host_cpus[c].busy_ns += 600'000'000 + 20'000'000 * ((tick + c) % 7);
        for (unsigned g = 0; g < kGuests; ++g) {
            GuestSample& gs = snap.guests[g];
            double wobble = double((tick * 7 + g * 13) % 11) / 10.0;
            uint64_t used = kRam / 4 + kRam / 8 * uint64_t(g % 3) + uint64_t(wobble * double(kRam / 50));
            gs.balloon->actual_bytes = gs.balloon->target_bytes;
            gs.balloon->stats.total_memory = kRam - gs.balloon->actual_bytes;
            gs.balloon->stats.available_memory = *gs.balloon->stats.total_memory > used ? *gs.balloon->stats.total_memory - used : 0;
            for (unsigned v = 0; v < kVcpus; ++v) {
                VcpuSample& vs = gs.vcpus[v];
                double demand = 0.05 + 0.9 * double((g * kVcpus + v) % 10) / 10.0;
                double wait = demand * (0.05 + 0.1 * wobble);
                vs.in_kvm_run_ns += 1'000'000'000;
                vs.runq_wait_ns += uint64_t(wait * 1e9);
                vs.halt_wait_ns += uint64_t(std::max(0.0, 1.0 - demand - wait) * 1e9);
                vs.runq_waits += 50 + 200 * (g % 3 == 0);
                vs.exits += 1000;
            }
        }
        return snap;
    }
};

double us_per_tick(ParallelFor executor, unsigned ticks, size_t* decisions) {
    Controller controller = Controller::learned(std::move(executor));
    SyntheticHost host;
    for (unsigned i = 0; i < 120; ++i) {  // warm-up: past the pinning policy's warm-up, models primed
        auto d = controller.tick(host.next());
        for (const auto& dec : d)
            if (auto* b = std::get_if<vireo::action::BalloonTarget>(&dec.action.body))
                for (auto& g : host.snap.guests)
                    if (g.name == dec.action.guest) g.balloon->target_bytes = b->bytes;
    }
    auto t0 = std::chrono::steady_clock::now();
    for (unsigned i = 0; i < ticks; ++i) {
        auto d = controller.tick(host.next());
        *decisions += d.size();
        for (const auto& dec : d)
            if (auto* b = std::get_if<vireo::action::BalloonTarget>(&dec.action.body))
                for (auto& g : host.snap.guests)
                    if (g.name == dec.action.guest) g.balloon->target_bytes = b->bytes;
    }
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / ticks;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned ticks = argc > 1 ? unsigned(std::atoi(argv[1])) : 3000;
    unsigned rounds = argc > 2 ? unsigned(std::atoi(argv[2])) : 5;
    if (ticks == 0 || rounds == 0) {
        std::fprintf(stderr, "usage: controller_tick [TICKS] [ROUNDS]\n");
        return 2;
    }
    std::vector<double> serial, parallel;
    size_t decisions = 0;
    for (unsigned r = 0; r < rounds; ++r) {  // interleaved, so both see the same machine
        serial.push_back(us_per_tick(serial_for(), ticks, &decisions));
        parallel.push_back(us_per_tick(tbb_parallel_for(), ticks, &decisions));
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (auto [name, values] : {std::pair{"controller_tick_us", &serial}, std::pair{"controller_tick_tbb_us", &parallel}}) {
        double us = median(*values);
        std::printf("{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"us per tick, %u guests x %u vCPUs on %u CPUs "
                    "(%.4f %% of a core at 1 s ticks; lower is better)\", \"baseline\": \"budget: 1 %% of one core at 1 s ticks\", "
                    "\"baseline_value\": %.3f, \"ratio\": %.6f}\n",
                    name, us, kGuests, kVcpus, kCpus, us / 1e4, kBudgetUs, us / kBudgetUs);
    }
    std::fprintf(stderr, "controller_tick: %u ticks x %u rounds, %zu decisions\n", ticks, rounds, decisions);
    return 0;
}
