// The simulator's bookkeeping, and the learned controller against the
// fixed baselines on every scenario (short runs of the replay table).
#include <gtest/gtest.h>

#include "agent/evaluation.h"
#include "agent/simulator.h"
#include "agent/tbb_executor.h"

namespace vireo::agent {
namespace {

TEST(AgentSimulator, ConservesTimeAndMemory) {
    auto s = make_scenario("noisy", 1, 400);
    ASSERT_TRUE(s);
    Simulator sim(*s);
    for (int t = 0; t < 100; ++t) sim.step();
    sim.submit({"web1", action::BalloonTarget{100ull << 20}});  // under 5 % of its 2 GiB
    for (int t = 0; t < 200; ++t) sim.step();
    Snapshot snap = sim.snapshot();
    double elapsed_ns = 300e9;
    for (const auto& g : snap.guests)
        for (const auto& v : g.vcpus) {
            // Every nanosecond of a vCPU is running, waiting or halted; none twice.
            EXPECT_NEAR(double(v.in_kvm_run_ns), elapsed_ns, 1e3);
            EXPECT_LE(double(v.runq_wait_ns + v.halt_wait_ns), elapsed_ns + 1e3);
        }
    for (const auto& c : snap.host_cpus) EXPECT_LE(double(c.busy_ns), elapsed_ns + 1e3);
    // Memory: the host's free memory is what the guests' balloons hold back.
    uint64_t resident = 0;
    for (const auto& g : snap.guests) resident += g.ram_bytes - g.balloon->actual_bytes;
    EXPECT_NEAR(double(snap.host_mem_available_bytes), double(s->host_ram_bytes - resident), 4096.0);
    EXPECT_EQ(sim.balloon_actual(0), 100ull << 20);
    EXPECT_EQ(sim.metrics().refused_actions, 0u);
    // Over the 5 % step: refused, as apply() would.
    sim.submit({"web1", action::BalloonTarget{1ull << 30}});
    sim.step();  // submitted: applied (here: refused) one tick later
    sim.step();
    EXPECT_EQ(sim.metrics().refused_actions, 1u);
}

TEST(AgentSimulator, ShortfallIsAFailedAllocation) {
    auto s = make_scenario("steady", 1, 100);
    ASSERT_TRUE(s);
    for (auto& u : s->guests[0].memory_used) u = 0.9f;
    s->guests[0].memory_used[50] = 0.99f;
    Simulator sim(*s);
    for (int t = 0; t < 5; ++t) sim.step();
    sim.submit({s->guests[0].name, action::BalloonTarget{s->guests[0].ram_bytes / 20}});  // 5 %: leaves 95 %
    while (!sim.done()) sim.step();
    EXPECT_EQ(sim.metrics().failed_allocations, 1u);  // tick 50 needed 99 % of RAM
}

// Inflates guest `g`'s balloon by `steps` limit steps (5 % of RAM), one per
// balloon interval, running the simulator until each is applied (or `until` holds).
template <typename Until>
void inflate_in_steps(Simulator& sim, const SimGuest& g, int steps, Until until) {
    for (int k = 1; k <= steps; ++k) {
        sim.submit({g.name, action::BalloonTarget{g.ram_bytes / 20 * uint64_t(k)}});
        for (int t = 0; t < 11 && !until(); ++t) sim.step();
    }
}

TEST(AgentSimulator, HotPageCacheIsWorkingSetButReportedAvailable) {
    auto s = make_scenario("steady", 1, 120);
    ASSERT_TRUE(s);
    SimGuest& g = s->guests[0];
    g.memory_used.assign(120, 0.5f);
    g.memory_cache.assign(120, 0.3f);
    Simulator sim(*s);
    sim.step();
    // Allocations 50 %, hot cache 30 %: the guest reports 50 % available, and
    // MemFree of a few percent (its cache fills free memory).
    auto b = *sim.snapshot().guests[0].balloon;
    EXPECT_NEAR(double(*b.stats.available_memory), 0.5 * double(g.ram_bytes), 1e6);
    EXPECT_LT(double(*b.stats.free_memory), 0.05 * double(g.ram_bytes));
    // A balloon of 25 % (five steps) squeezes the hot cache: under-provisioned and refaulting, not failing.
    inflate_in_steps(sim, g, 5, [] { return false; });
    while (!sim.done()) sim.step();
    SimMetrics m = sim.metrics();
    EXPECT_GT(m.under_provisioned_ticks, 0u);
    EXPECT_EQ(m.failed_allocations, 0u);
    EXPECT_GT(double(*sim.snapshot().guests[0].balloon->stats.major_faults), 1000.0);
}

TEST(AgentSimulator, SubSecondSpikesFailUnseen) {
    auto s = make_scenario("steady", 1, 30);
    ASSERT_TRUE(s);
    SimGuest& g = s->guests[0];
    g.memory_used.assign(30, 0.9f);
    g.memory_spike.assign(30, 0.0f);
    g.memory_spike[20] = 0.08f;
    Simulator sim(*s);
    sim.submit({g.name, action::BalloonTarget{g.ram_bytes / 20}});  // leaves 95 %
    for (int t = 0; t < 20; ++t) sim.step();
    double available = double(*sim.snapshot().guests[0].balloon->stats.available_memory);
    sim.step();  // the spike: 98 % wanted for a moment
    EXPECT_EQ(double(*sim.snapshot().guests[0].balloon->stats.available_memory), available);  // no sample shows it
    EXPECT_EQ(sim.metrics().failed_allocations, 1u);
    EXPECT_EQ(sim.metrics().under_provisioned_ticks, 1u);
}

TEST(AgentSimulator, ArrivalsWaitForMemoryAndLeave) {
    auto s = make_scenario("steady", 1, 300);
    ASSERT_TRUE(s);
    s->guests.resize(2);
    s->guests[1].arrive_tick = 10;
    s->guests[1].run_ticks = 200;  // asks for ticks 10-209
    // The second fits only once the first gives up half its RAM (and a MiB of rounding).
    s->host_ram_bytes = s->guests[0].ram_bytes + s->guests[1].ram_bytes / 2 + (1 << 20);
    Simulator sim(*s);
    for (int t = 0; t < 20; ++t) sim.step();
    EXPECT_TRUE(sim.running(0));
    EXPECT_FALSE(sim.running(1));
    EXPECT_EQ(sim.snapshot().guests.size(), 1u);
    // Ten 5 % steps of the first guest (2 GiB, as the second).
    inflate_in_steps(sim, s->guests[0], 10, [&] { return sim.running(1); });
    ASSERT_TRUE(sim.running(1));
    EXPECT_EQ(sim.snapshot().guests.size(), 2u);
    while (!sim.done()) sim.step();
    EXPECT_FALSE(sim.running(1));  // left at tick 210, having waited for a third of its time
    SimMetrics m = sim.metrics();
    EXPECT_GT(m.admission_wait_s, 50.0);
    EXPECT_LT(m.served, 1.0);
    EXPECT_EQ(m.host_short_ticks, 0u);
}

TEST(AgentSimulator, SameSeedSameNumbers) {
    auto s = make_scenario("bursty", 3, 400);
    ASSERT_TRUE(s);
    SimMetrics a = simulate(*s, kLearned, kLearned, {}), b = simulate(*s, kLearned, kLearned, {});
    EXPECT_EQ(a.wait_vcpu_s, b.wait_vcpu_s);
    EXPECT_EQ(a.idle_gib_s, b.idle_gib_s);
    EXPECT_EQ(a.ls_p99_wait_us, b.ls_p99_wait_us);
}

// The replay protocol in small on the tuning families (seeds 2-4: not the
// tuning seed; 15 simulated minutes to stay fast). What holds there: no
// action ever crosses a hard limit or pins busy siblings together; the
// learned balloon policy fails no allocation and saves more memory than no
// balloon; the learned pinning is never worse than the kernel alone.
TEST(AgentReplay, LearnedAgainstTheBaselinesOnTheTuningFamilies) {
    std::vector<std::string> tuning(tuning_family_names().begin(), tuning_family_names().end());
    auto plan = plan_scenarios(tuning, {2, 3, 4}, 900);
    ASSERT_TRUE(plan) << plan.error();
    auto rows = evaluate(*plan, tbb_parallel_for(), {Lever::Cpu, Lever::Memory, Lever::Both});
    size_t judged = 0;
    for (const auto& r : rows) {
        EXPECT_EQ(r.metrics.refused_actions, 0u) << r.scenario << " " << r.policy;
        EXPECT_EQ(r.metrics.busy_siblings_pinned_together, 0u) << r.scenario << " " << r.policy;
        EXPECT_EQ(r.runs.size(), 3u);
        if (r.policy == kLearned) {
            ++judged;
            EXPECT_FALSE(r.verdict.empty());
            if (r.lever == Lever::Memory) {
                EXPECT_EQ(r.metrics.failed_allocations, 0u) << r.scenario;
                // Its prediction error is measured, and a hindsight oracle saves more.
                EXPECT_GT(r.metrics.ws_mae, 0.0) << r.scenario;
                EXPECT_GT(r.metrics.ws_pinball_p99, 0.0) << r.scenario;
                EXPECT_GT(r.metrics.oracle_memory_saved, r.metrics.host_memory_saved) << r.scenario;
            }
        } else if (r.lever == Lever::Memory) {
            EXPECT_LT(r.metrics.ws_mae, 0.0) << r.policy;  // not a learned estimator: no error to measure
        }
        if (r.lever == Lever::Memory && r.policy == "no-balloon") {
            EXPECT_EQ(r.comparison.verdict, "better") << r.scenario;
        }
        if (r.lever == Lever::Cpu && r.policy == "no-pinning") {
            EXPECT_NE(r.comparison.verdict, "worse") << r.scenario;
        }
    }
    EXPECT_EQ(judged, 15u);  // 5 families x 3 levers
}

}  // namespace
}  // namespace vireo::agent
