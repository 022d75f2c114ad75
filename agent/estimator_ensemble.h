// Several working-set estimators side by side (different half-lives,
// percentiles and margins), each scored online by what its estimate would
// have cost, and the cheapest one followed -- the recommender of Google's
// Autopilot (Rzadca et al., EuroSys 2020), on one guest's memory.
//
// Cost of a member's estimate e for the next tick against the use u seen
// then (per unit of guest RAM, times the tick's length):
//   over-estimate  (e > u): over_cost  * (e - u)   memory left idle
//   under-estimate (u > e): under_cost * (u - e)   the guest would have run short
// under_cost is much larger: a short guest swaps or fails allocations, an
// idle GiB only costs density. Pressure signals (major faults, swap-in, a
// deflate-on-OOM) say the guest needed more than the use it could show --
// the balloon capped it -- so they raise the evidence by pressure_evidence
// of RAM. Scores decay (score_half_life_s) so the ensemble follows a guest
// whose behaviour changes, and a challenger must beat the current choice by
// switch_margin to take over, so the choice does not flap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/working_set_estimator.h"

namespace vireo::agent {

struct EstimatorEnsembleParams {
    std::vector<WorkingSetEstimatorParams> members = default_members();
    double over_cost = 1.0;
    double under_cost = 25.0;
    double pressure_evidence = 0.05;  // of guest RAM
    double score_half_life_s = 1800;
    double switch_margin = 0.05;  // relative

    static std::vector<WorkingSetEstimatorParams> default_members();
};

class EstimatorEnsemble {
public:
    EstimatorEnsemble(EstimatorEnsembleParams params, uint64_t ram_bytes);

    // One tick: score every member's previous estimate against this use,
    // then let every member learn it.
    void observe(uint64_t used_bytes, bool pressure, double dt_s);

    uint64_t estimate() const { return members_[best_].estimate(); }
    size_t best() const { return best_; }
    size_t size() const { return members_.size(); }
    const WorkingSetEstimator& member(size_t i) const { return members_[i]; }
    double score(size_t i) const { return scores_[i]; }
    uint64_t ram_bytes() const { return ram_bytes_; }
    uint64_t samples() const { return samples_; }

private:
    EstimatorEnsembleParams params_;
    uint64_t ram_bytes_;
    std::vector<WorkingSetEstimator> members_;
    std::vector<double> scores_;
    size_t best_ = 0;
    uint64_t samples_ = 0;
};

}  // namespace vireo::agent
