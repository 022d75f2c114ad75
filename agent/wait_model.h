// How long a vCPU waits in its host CPU's run queue, as a function of what
// shares that CPU with it: recursive least squares with a forgetting factor,
// learned online from every tick's (placement, measured wait) pair.
//
// The regression itself is generic (RecursiveLeastSquares); WaitModel fixes
// its features. With d the vCPU's demand (share of a CPU it wants), x the
// load of everything else on the CPUs it may run on, and u = 1 when it is
// not pinned (the kernel places it):
//   wait share ~ th0 d + th1 d x + th2 d x^2 + th3 d u
// -- a vCPU that wants little waits little; its wait grows with the load
// it shares with, faster than linearly as that load nears a whole CPU (the
// queueing knee); th3 is what the kernel's own placement costs or saves
// this vCPU compared with a fixed pin. The prior (th = 0, 1, 2, 0) is a
// first-order queueing model; each vCPU's data corrects it.
#pragma once

#include <array>
#include <cstddef>

namespace vireo::agent {

template <size_t N>
class RecursiveLeastSquares {
public:
    using Vector = std::array<double, N>;

    // forgetting in (0, 1]: weight of a sample k ticks old is forgetting^k.
    // prior_variance: how far from `prior` the coefficients may start moving.
    RecursiveLeastSquares(Vector prior, double prior_variance, double forgetting)
        : theta_(prior), forgetting_(forgetting), max_trace_(prior_variance * double(N)) {
        for (size_t i = 0; i < N; ++i) p_[i][i] = prior_variance;
    }

    void update(const Vector& x, double y) {
        Vector px{};
        for (size_t i = 0; i < N; ++i)
            for (size_t j = 0; j < N; ++j) px[i] += p_[i][j] * x[j];
        double denom = forgetting_;
        for (size_t i = 0; i < N; ++i) denom += x[i] * px[i];
        double err = y - predict(x);
        for (size_t i = 0; i < N; ++i) theta_[i] += px[i] / denom * err;
        double trace = 0;
        for (size_t i = 0; i < N; ++i) {
            for (size_t j = 0; j < N; ++j) p_[i][j] = (p_[i][j] - px[i] * px[j] / denom) / forgetting_;
            trace += p_[i][i];
        }
        // Without fresh information in some direction, forgetting inflates
        // the covariance without bound ("wind-up"), and one odd sample then
        // throws the coefficients far off. Cap it at the prior's size.
        if (trace > max_trace_)
            for (auto& row : p_)
                for (auto& v : row) v *= max_trace_ / trace;
        ++samples_;
    }

    double predict(const Vector& x) const {
        double y = 0;
        for (size_t i = 0; i < N; ++i) y += theta_[i] * x[i];
        return y;
    }
    const Vector& coefficients() const { return theta_; }
    size_t samples() const { return samples_; }

private:
    Vector theta_;
    std::array<Vector, N> p_{};
    double forgetting_;
    double max_trace_;
    size_t samples_ = 0;
};

struct WaitModelParams {
    double forgetting = 0.998;  // ~350 ticks of memory
    double prior_variance = 4.0;
    bool operator==(const WaitModelParams&) const = default;
};

class WaitModel {
public:
    static constexpr size_t kFeatures = 4;
    using Features = RecursiveLeastSquares<kFeatures>::Vector;

    explicit WaitModel(WaitModelParams params = {});

    static Features features(double demand, double co_load, bool unpinned);
    // Wait share (seconds waited per second) seen with this demand and co-load.
    void observe(double demand, double co_load, bool unpinned, double wait_share);
    // Predicted wait share, never negative.
    double predict(double demand, double co_load, bool unpinned) const;
    // The prediction plus `sigmas` standard deviations of this vCPU's recent
    // residuals when pinned / not pinned: what latency-sensitive guests are
    // judged by is the tail, and the kernel's placement is noisier than a pin.
    double predict_tail(double demand, double co_load, bool unpinned, double sigmas) const;
    const Features& coefficients() const { return rls_.coefficients(); }
    size_t samples() const { return rls_.samples(); }

private:
    RecursiveLeastSquares<kFeatures> rls_;
    double forgetting_;
    double residual_var_[2] = {0, 0};  // [pinned, unpinned]
    bool residual_seen_[2] = {false, false};
};

}  // namespace vireo::agent
