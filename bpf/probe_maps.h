// Reading and writing the probes' maps from user space: what each probe's
// loader part (bpf/<probe>.cpp, declared in probe_parts.h) shares.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bpf/probe_abi.h"
#include "vireo/telemetry.h"

namespace vireo::probe_maps {

inline int possible_cpus() {
    static const int n = libbpf_num_possible_cpus();
    return n > 0 ? n : 1;
}

// Reads one entry of a per-CPU array and sums the CPUs' copies, u64 by u64.
// Through a u64 buffer and memcpy: the records' fields are __u64 (unsigned
// long long), so summing through a uint64_t* would break strict aliasing.
template <typename T>
bool read_percpu(const bpf_map* map, uint32_t key, T& out, std::vector<T>* copies = nullptr) {
    static_assert(sizeof(T) % 8 == 0, "per-CPU values are summed as arrays of u64");
    constexpr size_t kWords = sizeof(T) / 8;
    const size_t cpus = size_t(possible_cpus());
    std::vector<uint64_t> raw(cpus * kWords);
    if (bpf_map__lookup_elem(map, &key, sizeof key, raw.data(), raw.size() * 8, 0) != 0) return false;
    std::vector<uint64_t> sum(kWords, 0);
    for (size_t c = 0; c < cpus; ++c)
        for (size_t i = 0; i < kWords; ++i) sum[i] += raw[c * kWords + i];
    std::memcpy(&out, sum.data(), sizeof out);
    if (copies) {
        copies->resize(cpus);
        for (size_t c = 0; c < cpus; ++c) std::memcpy(&(*copies)[c], &raw[c * kWords], sizeof(T));
    }
    return true;
}

inline void add_hist(vireo_hist& out, const __u64 (&in)[VIREO_HIST_BUCKETS]) {
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) out.bucket[i] += in[i];
}

// Zeroes every entry of an array map (per-CPU or not).
inline void zero_array(bpf_map* map) {
    if (!map) return;
    size_t value = (bpf_map__value_size(map) + 7) / 8 * 8;
    bool percpu = bpf_map__type(map) == BPF_MAP_TYPE_PERCPU_ARRAY;
    std::vector<uint8_t> zeros(value * (percpu ? size_t(possible_cpus()) : 1), 0);
    for (uint32_t key = 0; key < bpf_map__max_entries(map); ++key)
        bpf_map__update_elem(map, &key, sizeof key, zeros.data(), zeros.size(), BPF_ANY);
}

}  // namespace vireo::probe_maps
