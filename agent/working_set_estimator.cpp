#include "agent/working_set_estimator.h"

#include <algorithm>
#include <cmath>

namespace vireo::agent {

WorkingSetEstimator::WorkingSetEstimator(WorkingSetEstimatorParams params, uint64_t ram_bytes)
    : params_(params), ram_bytes_(std::max<uint64_t>(ram_bytes, 1)) {
    params_.percentile = std::clamp(params_.percentile, 1e-6, 1.0);
    params_.half_life_s = std::max(params_.half_life_s, 1e-3);
    params_.margin = std::max(params_.margin, 0.0);
}

void WorkingSetEstimator::observe(uint64_t used_bytes, double dt_s) {
    double decay = std::exp2(-std::max(dt_s, 0.0) / params_.half_life_s);
    // Weights that decayed below this share of the total are forgotten, so a
    // percentile close to 1 still lets go of a peak many half-lives old.
    double forget_below = total_weight_ * decay * 1e-4;
    total_weight_ = 0;
    for (auto& w : weight_) {
        w *= decay;
        if (w < forget_below) w = 0;
        total_weight_ += w;
    }
    unsigned b = unsigned(std::min<uint64_t>(used_bytes, ram_bytes_) * kBuckets / ram_bytes_);
    weight_[std::min(b, kBuckets - 1)] += 1.0;
    total_weight_ += 1.0;
    double est = double(percentile_bytes()) * (1.0 + params_.margin);
    estimate_ = uint64_t(std::min(est, double(ram_bytes_)));
}

uint64_t WorkingSetEstimator::percentile_bytes() const {
    if (total_weight_ <= 0) return 0;
    double want = params_.percentile * total_weight_, sum = 0;
    unsigned top = 0;
    for (unsigned b = 0; b < kBuckets; ++b) {
        if (weight_[b] <= 0) continue;
        top = b;
        sum += weight_[b];
        if (sum >= want * (1 - 1e-12)) break;
    }
    // The bucket's upper edge: a use anywhere in it is covered.
    return (uint64_t(top) + 1) * ram_bytes_ / kBuckets;
}

}  // namespace vireo::agent
