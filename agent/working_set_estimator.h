// One guest's working set, estimated from a decaying histogram of its
// memory use: recent samples weigh more (half-life), and the estimate is a
// high percentile plus a safety margin. One such estimator is one "model" of
// the ensemble (agent/estimator_ensemble.h), as in Google's Autopilot.
#pragma once

#include <array>
#include <cstdint>

namespace vireo::agent {

struct WorkingSetEstimatorParams {
    double half_life_s = 600;  // a sample's weight halves every half_life_s
    double percentile = 0.99;  // of the decayed histogram, in (0, 1]
    double margin = 0.10;      // estimate = percentile * (1 + margin)
    bool operator==(const WorkingSetEstimatorParams&) const = default;
};

class WorkingSetEstimator {
public:
    // Resolution: guest RAM / kBuckets (0.5 %): fine enough that rounding up
    // to a bucket edge costs less than any margin we use.
    static constexpr unsigned kBuckets = 200;

    WorkingSetEstimator(WorkingSetEstimatorParams params, uint64_t ram_bytes);

    // Ages every sample by dt_s, then adds one of `used_bytes`.
    void observe(uint64_t used_bytes, double dt_s);
    // Bytes the guest needs, margin included, at most its RAM; 0 before any sample.
    uint64_t estimate() const { return estimate_; }
    double total_weight() const { return total_weight_; }
    const WorkingSetEstimatorParams& params() const { return params_; }

private:
    uint64_t percentile_bytes() const;

    WorkingSetEstimatorParams params_;
    uint64_t ram_bytes_;
    std::array<double, kBuckets> weight_{};
    double total_weight_ = 0;
    uint64_t estimate_ = 0;
};

}  // namespace vireo::agent
