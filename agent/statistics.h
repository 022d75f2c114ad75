// Small statistics for the evaluation protocol (agent/evaluation.h): the
// mean of paired per-seed differences with a 95 % Student-t interval. No
// randomness: two runs print the same numbers.
#pragma once

#include <cstddef>
#include <vector>

namespace vireo::agent {

struct Interval {
    double mean = 0, lo = 0, hi = 0;
    size_t n = 0;
    bool excludes_zero() const { return n >= 2 && (lo > 0 || hi < 0); }
};

// The 97.5 % quantile of Student's t with `df` degrees of freedom (the
// two-sided 95 % interval's factor): exact table up to 4, the
// Cornish-Fisher expansion around the normal quantile beyond (error < 1e-3
// from 5 on).
double t_quantile_975(double df);

// Mean of x with its 95 % t interval (n < 2: lo = hi = mean).
Interval mean_interval(const std::vector<double>& x);

}  // namespace vireo::agent
