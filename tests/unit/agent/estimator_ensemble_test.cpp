// Working-set estimators and their ensemble on synthetic use series with
// known answers.
#include <gtest/gtest.h>

#include "agent/estimator_ensemble.h"
#include "agent/working_set_estimator.h"

namespace vireo::agent {
namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t kRam = 4096 * MiB;

TEST(AgentWorkingSetEstimator, SteadyUseGivesUseTimesMargin) {
    WorkingSetEstimator e({600, 0.99, 0.10}, kRam);
    EXPECT_EQ(e.estimate(), 0u);
    for (int t = 0; t < 100; ++t) e.observe(1024 * MiB, 1.0);
    // The bucket edge above 1 GiB (RAM / 200 = 20.48 MiB buckets), plus 10 %.
    EXPECT_GE(e.estimate(), 1024 * MiB * 110 / 100);
    EXPECT_LE(e.estimate(), (1024 + 21) * MiB * 110 / 100 + MiB);
}

TEST(AgentWorkingSetEstimator, StepUpIsTrackedAtOnce) {
    WorkingSetEstimator e({600, 0.99, 0.0}, kRam);
    for (int t = 0; t < 600; ++t) e.observe(1024 * MiB, 1.0);
    int ticks = 0;
    while (e.estimate() < 2048 * MiB && ticks < 100) {
        e.observe(2048 * MiB, 1.0);
        ++ticks;
    }
    // ~430 of decayed weight after 600 ticks: 5 new samples are over 1 %, the p99 moves.
    EXPECT_LE(ticks, 5);
    EXPECT_GE(ticks, 2);
}

TEST(AgentWorkingSetEstimator, StepDownIsForgottenWithinHalfLives) {
    const double half_life = 60;
    WorkingSetEstimator e({half_life, 0.99, 0.0}, kRam);
    for (int t = 0; t < 600; ++t) e.observe(2048 * MiB, 1.0);
    int ticks = 0;
    while (e.estimate() > 1100 * MiB && ticks < 10000) {
        e.observe(1024 * MiB, 1.0);
        ++ticks;
    }
    // The old level's weight must fall under 1 % of the total: log2(100) ~ 6.6 half-lives.
    EXPECT_GT(ticks, int(5 * half_life));
    EXPECT_LE(ticks, int(8 * half_life));
}

TEST(AgentWorkingSetEstimator, NeverAboveRam) {
    WorkingSetEstimator e({60, 1.0, 0.5}, kRam);
    for (int t = 0; t < 10; ++t) e.observe(kRam * 2, 1.0);
    EXPECT_EQ(e.estimate(), kRam);
}

TEST(AgentEstimatorEnsemble, PrefersTheMemberThatWouldHaveCostLeast) {
    // Two members: a tight one (the recent median, no margin) and a loose one (near max, +50 %).
    EstimatorEnsembleParams p;
    p.members = {{30, 0.5, 0.0}, {3600, 0.999, 0.5}};
    {
        // Steady use: the tight member is never under, the loose one always 50 % over.
        EstimatorEnsemble ens(p, kRam);
        for (int t = 0; t < 600; ++t) ens.observe(1024 * MiB, false, 1.0);
        EXPECT_EQ(ens.best(), 0u);
        EXPECT_LT(ens.score(0), ens.score(1));
    }
    {
        // Use that jumps up every minute: the tight member is caught short
        // each time, and under-estimates cost 25x: the loose member wins.
        EstimatorEnsemble ens(p, kRam);
        for (int t = 0; t < 1800; ++t) ens.observe((t % 60 < 50 ? 1024 : 2048) * MiB, false, 1.0);
        EXPECT_EQ(ens.best(), 1u);
    }
}

TEST(AgentEstimatorEnsemble, PressureRaisesTheEstimate) {
    EstimatorEnsembleParams p;
    p.members = {{60, 0.99, 0.0}};
    EstimatorEnsemble calm(p, kRam), pressed(p, kRam);
    for (int t = 0; t < 100; ++t) {
        calm.observe(1024 * MiB, false, 1.0);
        pressed.observe(1024 * MiB, t > 90, 1.0);
    }
    // A capped guest under pressure needed more than it showed: +5 % of RAM of evidence.
    EXPECT_GE(pressed.estimate(), calm.estimate() + kRam * 4 / 100);
}

}  // namespace
}  // namespace vireo::agent
