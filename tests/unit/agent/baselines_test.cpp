// The fixed baselines against hand-worked cases from the rule sets they
// follow (agent/baselines.h): oVirt MoM's balloon.rules, ESX's idle memory
// tax, Senpai's probe and back-off, the Kubernetes static CPU manager, and
// the kernel-skill sweep of the evaluation plan.
#include <gtest/gtest.h>

#include "agent/baselines.h"
#include "agent/evaluation.h"

namespace vireo::agent {
namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t kRam = 4096 * MiB;

// A host with these guests (RAM 4 GiB each), balloon actual = target.
struct World {
    Snapshot snap;
    Features f;
    PolicyScope scope;

    World(double host_free, std::vector<std::pair<uint64_t, uint64_t>> balloon_and_free_mib, double now_s = 100) {
        snap.timestamp_ns = uint64_t(now_s * 1e9);
        for (size_t i = 0; i < balloon_and_free_mib.size(); ++i) {
            GuestSample g;
            g.name = "g" + std::to_string(i);
            g.ram_bytes = kRam;
            BalloonSample b;
            b.target_bytes = b.actual_bytes = balloon_and_free_mib[i].first * MiB;
            b.stats.total_memory = kRam - b.actual_bytes;
            b.stats.free_memory = b.stats.available_memory = balloon_and_free_mib[i].second * MiB;
            g.balloon = b;
            snap.guests.push_back(g);
        }
        f.snapshot = &snap;
        f.now_ns = snap.timestamp_ns;
        f.dt_s = 1;
        f.host.mem_available_fraction = host_free;
        for (const auto& g : snap.guests) {
            GuestFeatures gf;
            gf.sample = &g;
            gf.available_bytes = g.balloon->stats.available_memory;
            gf.used_bytes = *g.balloon->stats.total_memory - *g.balloon->stats.available_memory;
            f.guests.push_back(gf);
            scope.may_pin.push_back(true);
            scope.may_balloon.push_back(true);
        }
    }
    std::vector<Proposal> run(Policy& p) {
        std::vector<Proposal> out;
        p.prepare(f);
        p.propose(f, scope, out);
        return out;
    }
};

double target_mib(const Proposal& p) { return double(std::get<action::BalloonTarget>(p.body).bytes) / double(MiB); }

TEST(AgentMomRules, ShrinksByTheStepUnderPressureButNotBelowUsePlusScaledFree) {
    MomBalloon mom;
    // Host free 10 % < 20 %: guest free share 0.2 * 0.10 / 0.20 = 0.10.
    // used = 4096 - 2048; min = 2048 + 409.6; 5 % step: 3891.2 MiB -> target 204.8 MiB.
    World w(0.10, {{0, 2048}, {0, 300}});
    auto out = w.run(mom);
    ASSERT_EQ(out.size(), 1u);  // g1: used 3796 + 409.6 > its memory: left alone
    EXPECT_EQ(out[0].guest, 0u);
    EXPECT_NEAR(target_mib(out[0]), 204.8, 0.01);
}

TEST(AgentMomRules, CriticalPressureForcesTheGuestToSwap) {
    // Host free 4 % <= 5 %: guest free share 0.04 - 0.05 = -0.01: the
    // balloon may take what the guest uses. used 3996, min 3996 - 40.96.
    MomBalloon mom;
    World w(0.04, {{0, 100}});
    auto out = w.run(mom);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NEAR(target_mib(out[0]), 4096 - 3955.04, 0.01);
    // Under ordinary pressure (10 %) the same guest is left alone.
    MomBalloon calm;
    World v(0.10, {{0, 100}});
    EXPECT_TRUE(v.run(calm).empty());
}

TEST(AgentMomRules, GrowsWhenTheHostIsRelaxedAndSkipsTinyChanges) {
    MomBalloon mom;
    // Host free 30 %: grow by 5 % of the guest's memory (3072 -> 3225.6), at
    // least used + 20 % of RAM (2072 + 819.2): target 870.4 MiB.
    World w(0.30, {{1024, 1000}, {6, 1000}});
    auto out = w.run(mom);
    ASSERT_EQ(out.size(), 1u);  // g1: 4090 -> 4096 is under 0.25 % of 4090: skipped
    EXPECT_NEAR(target_mib(out[0]), 870.4, 0.01);
    // One policy interval (10 s) between rounds.
    World again(0.30, {{1024, 1000}}, 105);
    EXPECT_TRUE(again.run(mom).empty());
}

TEST(AgentIdleTax, RhoAndMinFundingRevocation) {
    IdleTaxBalloon esx;
    // tau 0.75: k = 4. Shares = RAM, memory = RAM: rho = 1 / (f + 4 (1 - f)).
    EXPECT_NEAR(esx.rho(kRam, kRam, 0.25), 1 / 3.25, 1e-12);
    EXPECT_NEAR(esx.rho(kRam, kRam, 1.0), 1.0, 1e-12);
    EXPECT_NEAR(esx.rho(kRam, kRam / 2, 1.0), 2.0, 1e-12);  // half its memory taken: twice the price per page
    // Host free 3 % < 6 %: g0 uses a quarter of its memory, g1 all of it:
    // reclaim a 5 % step from g0 (lowest rho).
    World w(0.03, {{0, 3072}, {0, 0}});
    auto out = w.run(esx);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].guest, 0u);
    EXPECT_NEAR(target_mib(out[0]), 204.8, 0.01);
    EXPECT_NEAR(esx.active_fraction("g0"), 0.25, 0.1);  // 100 sampled pages
    EXPECT_DOUBLE_EQ(esx.active_fraction("g1"), 1.0);
    // Host free 10 % > 6 + 2 %: give a step back to the ballooned guest of highest rho.
    IdleTaxBalloon relaxed;
    World v(0.10, {{1024, 2000}, {1024, 10}});
    out = v.run(relaxed);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].guest, 1u);
    EXPECT_NEAR(target_mib(out[0]), 1024 - 204.8, 0.01);
}

TEST(AgentSenpai, ProbesWithoutPressureAndBacksOffWithIt) {
    PsiReclaim senpai;
    World start(0.5, {{0, 2000}}, 1);
    EXPECT_TRUE(start.run(senpai).empty());  // the first interval starts
    // 10 s on, no stall: probe by max_probe (1 %): 4096 -> 4055.04 MiB.
    World calm(0.5, {{0, 2000}}, 11);
    calm.f.dt_s = 10;
    auto out = calm.run(senpai);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NEAR(target_mib(out[0]), 40.96, 0.01);
    // Then 100 major faults/s for 10 s at 0.1 ms each: 100 ms > 10 ms:
    // grow by ((100 / 10) / 20)^2 = 25 %: 3072 -> 3840 MiB.
    World pressed(0.5, {{1024, 10}}, 21);
    pressed.f.dt_s = 10;
    pressed.f.guests[0].major_faults_per_s = 100;
    out = pressed.run(senpai);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NEAR(target_mib(out[0]), 256, 0.01);
}

TEST(AgentClassAware, LatencySensitiveOnExclusiveCpusTheRestPacked) {
    World w(0.5, {{0, 0}, {0, 0}});
    w.f.host.cpus = {0, 1, 2, 3};
    auto& ls = w.f.guests[0];
    auto& batch = w.f.guests[1];
    ls.guest_class = GuestClass::LatencySensitive;
    batch.guest_class = GuestClass::Batch;
    w.snap.guests[0].configured_class = GuestClass::LatencySensitive;
    w.snap.guests[1].configured_class = GuestClass::Batch;
    for (auto* g : {&ls, &batch}) {
        g->age_s = 100;
        for (unsigned v = 0; v < 2; ++v) {
            VcpuFeatures vf;
            vf.index = v;
            vf.cpus = w.f.host.cpus;
            vf.demand_avg = g == &ls ? 0.1 : 0.9;
            g->vcpus.push_back(vf);
        }
    }
    // Batch wants 1.8 CPUs: the pool keeps ceil(1.8 / 0.9) = 2; the LS vCPUs get CPUs 3 and 2.
    ClassAwarePinning policy;
    auto out = w.run(policy);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(std::get<action::Pin>(out[0].body).cpus, std::vector<unsigned>{3});
    EXPECT_EQ(std::get<action::Pin>(out[1].body).cpus, std::vector<unsigned>{2});
    EXPECT_EQ(std::get<action::Pin>(out[2].body).cpus, (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(std::get<action::Pin>(out[3].body).cpus, (std::vector<unsigned>{0, 1}));
    EXPECT_TRUE(w.run(policy).empty());  // static: planned once
}

TEST(AgentEvaluationPlan, HeldOutFamiliesSweepTheKernelsPlacementSkill) {
    auto plan = plan_scenarios({"steady", "heavy"}, {2, 3, 4, 5, 6, 7}, 20);
    ASSERT_TRUE(plan) << plan.error();
    ASSERT_EQ(plan->kernel_skill.size(), 12u);
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(plan->kernel_skill[i], kTuningKernelSkill);
    std::vector<double> held(plan->kernel_skill.begin() + 6, plan->kernel_skill.end());
    std::sort(held.begin(), held.end());
    EXPECT_EQ(held, (std::vector<double>{0.5, 0.6, 0.7, 0.8, 0.9, 1.0}));
}

}  // namespace
}  // namespace vireo::agent
