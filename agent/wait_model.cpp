#include "agent/wait_model.h"

#include <algorithm>
#include <cmath>

namespace vireo::agent {

namespace {
// Beyond two CPUs' worth of co-load the quadratic would dominate every
// other term; such a placement is bad either way, so cap what it sees.
constexpr double kMaxCoLoad = 2.0;
}  // namespace

WaitModel::WaitModel(WaitModelParams params)
    : rls_({0.0, 1.0, 2.0, 0.0}, params.prior_variance, params.forgetting), forgetting_(params.forgetting) {}

WaitModel::Features WaitModel::features(double demand, double co_load, bool unpinned) {
    double d = std::clamp(demand, 0.0, 1.0), x = std::clamp(co_load, 0.0, kMaxCoLoad);
    return {d, d * x, d * x * x, unpinned ? d : 0.0};
}

void WaitModel::observe(double demand, double co_load, bool unpinned, double wait_share) {
    auto x = features(demand, co_load, unpinned);
    double residual = wait_share - std::max(0.0, rls_.predict(x));  // before learning it: an honest error
    int k = unpinned ? 1 : 0;
    residual_var_[k] = residual_seen_[k] ? forgetting_ * residual_var_[k] + (1 - forgetting_) * residual * residual
                                         : residual * residual;
    residual_seen_[k] = true;
    rls_.update(x, wait_share);
}

double WaitModel::predict_tail(double demand, double co_load, bool unpinned, double sigmas) const {
    int k = unpinned ? 1 : 0;
    // Unseen: assume the other placement's spread (no evidence it is calmer).
    double var = residual_seen_[k] ? residual_var_[k] : residual_var_[1 - k];
    return predict(demand, co_load, unpinned) + sigmas * std::sqrt(var);
}

double WaitModel::predict(double demand, double co_load, bool unpinned) const {
    return std::max(0.0, rls_.predict(features(demand, co_load, unpinned)));
}

}  // namespace vireo::agent
