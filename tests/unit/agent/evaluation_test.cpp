// The evaluation protocol's statistics and verdicts (agent/statistics.h,
// agent/evaluation.h) on hand-worked cases.
#include <gtest/gtest.h>

#include "agent/evaluation.h"
#include "agent/statistics.h"

namespace vireo::agent {
namespace {

TEST(AgentStatistics, TQuantileMatchesTheTable) {
    EXPECT_NEAR(t_quantile_975(1), 12.706, 1e-3);
    EXPECT_NEAR(t_quantile_975(4), 2.776, 1e-3);
    EXPECT_NEAR(t_quantile_975(5), 2.571, 2e-3);
    EXPECT_NEAR(t_quantile_975(19), 2.093, 1e-3);
    EXPECT_NEAR(t_quantile_975(99), 1.984, 1e-3);
}

TEST(AgentStatistics, MeanIntervalByHand) {
    // 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5), t(4) 2.7764: half-width 1.9632.
    Interval i = mean_interval({1, 2, 3, 4, 5});
    EXPECT_EQ(i.n, 5u);
    EXPECT_DOUBLE_EQ(i.mean, 3);
    EXPECT_NEAR(i.lo, 3 - 1.9632, 1e-3);
    EXPECT_NEAR(i.hi, 3 + 1.9632, 1e-3);
    EXPECT_TRUE(i.excludes_zero());
    EXPECT_FALSE(mean_interval({-1, 1, -1, 1}).excludes_zero());
    EXPECT_FALSE(mean_interval({5}).excludes_zero());  // one seed says nothing about spread
}

Interval interval(double lo, double hi) { return {(lo + hi) / 2, lo, hi, 20}; }

TEST(AgentVerdict, BetterFlipsToWorseWhenBatchThroughputDropsOverTwoPoints) {
    VerdictInput in{Lever::Cpu, interval(10, 30), {}, 0.95, 0.96, 0};
    EXPECT_EQ(judge(in).verdict, "better");
    in.learned_batch = 0.941;  // 1.9 points below: still in bounds
    EXPECT_EQ(judge(in).verdict, "better");
    in.learned_batch = 0.939;  // 2.1 points below
    Comparison c = judge(in);
    EXPECT_EQ(c.verdict, "worse");
    EXPECT_NE(c.why.find("batch throughput"), std::string::npos);
}

TEST(AgentVerdict, FailedAllocationsMakeAMemoryWinWorse) {
    VerdictInput in{Lever::Memory, {}, interval(5, 9), 1, 1, 0};
    EXPECT_EQ(judge(in).verdict, "better");
    in.learned_failed = 1;
    EXPECT_EQ(judge(in).verdict, "worse");
}

TEST(AgentVerdict, IntervalsDecideOtherwise) {
    EXPECT_EQ(judge({Lever::Cpu, interval(-5, 20), {}, 1, 1, 0}).verdict, "tie");
    EXPECT_EQ(judge({Lever::Cpu, interval(-20, -5), {}, 1, 1, 0}).verdict, "worse");
    // Both levers: better on one, no worse on the other.
    EXPECT_EQ(judge({Lever::Both, interval(5, 20), interval(-1, 1), 1, 1, 0}).verdict, "better");
    EXPECT_EQ(judge({Lever::Both, interval(5, 20), interval(-3, -1), 1, 1, 0}).verdict, "worse");
    // A CPU-only comparison ignores the memory interval.
    EXPECT_EQ(judge({Lever::Cpu, interval(5, 20), interval(-3, -1), 1, 1, 0}).verdict, "better");
}

}  // namespace
}  // namespace vireo::agent
