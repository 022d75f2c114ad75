#include "vmm/metrics/log2_hist.h"

#include <cmath>

namespace vireo {

std::optional<uint64_t> log2_bucket_upper_ns(unsigned i) {
    if (i + 1 >= VIREO_HIST_BUCKETS) return std::nullopt;
    return i == 0 ? 0 : uint64_t(1) << i;
}

uint64_t hist_total(const vireo_hist& h) {
    uint64_t t = 0;
    for (uint64_t b : h.bucket) t += b;
    return t;
}

vireo_hist hist_delta(const vireo_hist& now, const vireo_hist& before) {
    vireo_hist d{};
    // A counter that went backwards (the guest restarted) counts from zero.
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i)
        d.bucket[i] = now.bucket[i] >= before.bucket[i] ? now.bucket[i] - before.bucket[i] : now.bucket[i];
    return d;
}

std::optional<uint64_t> hist_quantile_ns(const vireo_hist& h, double q) {
    uint64_t total = hist_total(h);
    if (total == 0) return std::nullopt;
    uint64_t rank = uint64_t(std::ceil(q * double(total)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) {
        seen += h.bucket[i];
        if (seen >= rank) return log2_bucket_upper_ns(i).value_or(UINT64_MAX);
    }
    return UINT64_MAX;
}

std::optional<uint64_t> hist_quantile_interpolated_ns(const vireo_hist& h, double q) {
    uint64_t total = hist_total(h);
    if (total == 0) return std::nullopt;
    double rank = std::max(q * double(total), 1.0);
    double seen = 0;
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) {
        double in_bucket = double(h.bucket[i]);
        if (seen + in_bucket >= rank && in_bucket > 0) {
            if (i == 0) return 0;
            double lo = double(uint64_t(1) << (i - 1));
            auto upper = log2_bucket_upper_ns(i);
            if (!upper) return uint64_t(lo);
            return uint64_t(lo + (double(*upper) - lo) * (rank - seen) / in_bucket);
        }
        seen += in_bucket;
    }
    return log2_bucket_upper_ns(VIREO_HIST_BUCKETS - 1).value_or(UINT64_MAX);
}

}  // namespace vireo

