// Reading the log2-of-nanoseconds histograms of include/vireo/telemetry.h:
// totals, differences between two snapshots, quantiles (as the upper bound
// of the bucket they fall in -- the resolution a log2 histogram has).
#pragma once

#include <cstdint>
#include <optional>

#include "vireo/telemetry.h"

namespace vireo {

// Upper bound of bucket i in ns: bucket 0 holds exactly 0, bucket i
// [2^(i-1), 2^i); the last bucket is open (nullopt: +Inf).
std::optional<uint64_t> log2_bucket_upper_ns(unsigned i);
uint64_t hist_total(const vireo_hist& h);
vireo_hist hist_delta(const vireo_hist& now, const vireo_hist& before);
// The upper bound of the bucket holding quantile q (0 < q <= 1); nullopt if
// the histogram is empty; UINT64_MAX if it falls in the open last bucket.
std::optional<uint64_t> hist_quantile_ns(const vireo_hist& h, double q);
// The same quantile interpolated linearly inside its bucket, as Prometheus'
// histogram_quantile() does: an estimate finer than a factor of 2 (for
// comparing two windows), exact only if values spread evenly in the bucket.
// The open last bucket gives its lower bound.
std::optional<uint64_t> hist_quantile_interpolated_ns(const vireo_hist& h, double q);

}  // namespace vireo
