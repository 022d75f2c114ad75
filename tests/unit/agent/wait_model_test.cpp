// Recursive least squares and the wait model built on it.
#include <gtest/gtest.h>

#include <cmath>

#include "agent/wait_model.h"

namespace vireo::agent {
namespace {

TEST(AgentRecursiveLeastSquares, RecoversKnownCoefficients) {
    // y = 0.5 + 2 a - 3 b, exact; features cycle so every direction is excited.
    RecursiveLeastSquares<3> rls({0, 0, 0}, 100.0, 1.0);
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return double(state >> 11) * 0x1.0p-53;
    };
    for (int i = 0; i < 500; ++i) {
        double a = next(), b = next();
        rls.update({1, a, b}, 0.5 + 2 * a - 3 * b);
    }
    EXPECT_NEAR(rls.coefficients()[0], 0.5, 1e-3);
    EXPECT_NEAR(rls.coefficients()[1], 2.0, 1e-3);
    EXPECT_NEAR(rls.coefficients()[2], -3.0, 1e-3);
}

TEST(AgentRecursiveLeastSquares, ForgettingFollowsAChange) {
    RecursiveLeastSquares<2> rls({0, 0}, 100.0, 0.98);
    for (int i = 0; i < 400; ++i) rls.update({1, double(i % 7)}, 1 + 1 * double(i % 7));
    for (int i = 0; i < 400; ++i) rls.update({1, double(i % 7)}, 1 + 4 * double(i % 7));
    EXPECT_NEAR(rls.coefficients()[1], 4.0, 0.05);
    // Without forgetting the old regime would still weigh half.
    RecursiveLeastSquares<2> stiff({0, 0}, 100.0, 1.0);
    for (int i = 0; i < 400; ++i) stiff.update({1, double(i % 7)}, 1 + 1 * double(i % 7));
    for (int i = 0; i < 400; ++i) stiff.update({1, double(i % 7)}, 1 + 4 * double(i % 7));
    EXPECT_LT(stiff.coefficients()[1], 3.0);
}

TEST(AgentWaitModel, LearnsHowWaitGrowsWithCoLoad) {
    WaitModel m;
    // A world where wait share = 0.3 d x (pinned), and the kernel's own
    // placement adds 0.1 d.
    for (int i = 0; i < 3000; ++i) {
        double d = 0.1 + 0.8 * double(i % 9) / 8, x = double(i % 13) / 12;
        bool unpinned = i % 2;
        m.observe(d, x, unpinned, 0.3 * d * x + (unpinned ? 0.1 * d : 0.0));
    }
    EXPECT_NEAR(m.predict(0.5, 0.5, false), 0.075, 0.01);
    EXPECT_NEAR(m.predict(0.5, 0.5, true), 0.125, 0.01);
    EXPECT_NEAR(m.predict(0.5, 0.0, false), 0.0, 0.01);
    EXPECT_GE(m.predict(0.0, 2.0, false), 0.0);  // never negative
}

TEST(AgentWaitModel, PriorPredictsMoreWaitWithMoreCoLoad) {
    WaitModel m;
    EXPECT_LT(m.predict(0.5, 0.2, false), m.predict(0.5, 0.8, false));
    EXPECT_DOUBLE_EQ(m.predict(0.0, 0.8, false), 0.0);
}

}  // namespace
}  // namespace vireo::agent
