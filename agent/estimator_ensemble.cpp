#include "agent/estimator_ensemble.h"

#include <algorithm>
#include <cmath>

namespace vireo::agent {

// From a fast follower (a minute) to a long memory (two hours), each with
// a margin that suits how much it may have missed. Chosen once on the
// tuning seed's scenarios (agent/scenarios.h); not changed for evaluation.
std::vector<WorkingSetEstimatorParams> EstimatorEnsembleParams::default_members() {
    return {
        {60, 0.99, 0.15},
        {300, 0.99, 0.10},
        {900, 0.995, 0.05},
        {900, 0.98, 0.15},
        {3600, 0.995, 0.05},
        {7200, 0.999, 0.02},
    };
}

EstimatorEnsemble::EstimatorEnsemble(EstimatorEnsembleParams params, uint64_t ram_bytes)
    : params_(std::move(params)), ram_bytes_(std::max<uint64_t>(ram_bytes, 1)) {
    if (params_.members.empty()) params_.members = EstimatorEnsembleParams::default_members();
    for (const auto& m : params_.members) members_.emplace_back(m, ram_bytes_);
    scores_.assign(members_.size(), 0.0);
}

void EstimatorEnsemble::observe(uint64_t used_bytes, bool pressure, double dt_s) {
    double ram = double(ram_bytes_);
    double evidence = double(used_bytes) / ram + (pressure ? params_.pressure_evidence : 0.0);
    double decay = std::exp2(-std::max(dt_s, 0.0) / params_.score_half_life_s);
    if (samples_ > 0) {
        for (size_t i = 0; i < members_.size(); ++i) {
            double e = double(members_[i].estimate()) / ram;
            double cost = e > evidence ? params_.over_cost * (e - evidence) : params_.under_cost * (evidence - e);
            scores_[i] = scores_[i] * decay + cost * dt_s;
        }
        size_t challenger = size_t(std::min_element(scores_.begin(), scores_.end()) - scores_.begin());
        if (scores_[challenger] < scores_[best_] * (1 - params_.switch_margin)) best_ = challenger;
    }
    // The members learn the evidence too: under pressure the guest needed
    // more than the use it could show.
    uint64_t need = uint64_t(std::min(evidence, 1.0) * ram);
    for (auto& m : members_) m.observe(need, dt_s);
    ++samples_;
}

}  // namespace vireo::agent
