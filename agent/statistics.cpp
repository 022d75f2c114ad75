#include "agent/statistics.h"

#include <cmath>

namespace vireo::agent {

double t_quantile_975(double df) {
    static constexpr double kSmall[] = {12.7062, 4.3027, 3.1824, 2.7764};
    if (df < 1) return INFINITY;
    if (df < 5) return kSmall[int(df) - 1];
    const double z = 1.959963984540054, z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
    double g1 = (z3 + z) / 4, g2 = (5 * z5 + 16 * z3 + 3 * z) / 96, g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384,
           g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
    return z + g1 / df + g2 / (df * df) + g3 / (df * df * df) + g4 / (df * df * df * df);
}

Interval mean_interval(const std::vector<double>& x) {
    Interval r;
    r.n = x.size();
    if (x.empty()) return r;
    double sum = 0;
    for (double v : x) sum += v;
    r.mean = sum / double(r.n);
    r.lo = r.hi = r.mean;
    if (r.n < 2) return r;
    double ss = 0;
    for (double v : x) ss += (v - r.mean) * (v - r.mean);
    double se = std::sqrt(ss / double(r.n - 1) / double(r.n));
    double half = t_quantile_975(double(r.n - 1)) * se;
    r.lo = r.mean - half;
    r.hi = r.mean + half;
    return r;
}

}  // namespace vireo::agent
