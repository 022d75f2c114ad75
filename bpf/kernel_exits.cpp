// The kernel-exits probe's loader part (its programs: kernel_exits.bpf.c).
#include <algorithm>

#include "bpf/probe_maps.h"
#include "bpf/probe_parts.h"

namespace vireo::probe_parts {

using namespace probe_maps;

void size_kernel_exits(vireo_bpf& s, bool runs, uint32_t vcpus) {
    bpf_map__set_max_entries(s.maps.kexit_totals, runs ? vcpus : 1);
    bpf_map__set_max_entries(s.maps.kexit_reasons, runs ? vcpus * VIREO_KEXIT_SLOTS : 1);
}

void zero_kernel_exits(vireo_bpf& s) {
    zero_array(s.maps.kexit_totals);
    zero_array(s.maps.kexit_reasons);
}

void read_kernel_exits(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out) {
    vireo_kexit_totals t;
    std::vector<vireo_kexit_totals> copies;
    if (!read_percpu(s.maps.kexit_totals, slot, t, &copies)) return;
    out.sources |= VIREO_TELEMETRY_KERNEL_EXITS;
    out.kexits += t.exits;
    out.kexit_ns += t.ns;
    add_hist(out.kexit_hist, t.hist);
    for (const auto& c : copies) out.kexit_isa = std::max<uint32_t>(out.kexit_isa, uint32_t(c.isa));
    if (!t.exits) return;
    for (unsigned r = 0; r < VIREO_KEXIT_SLOTS; ++r) {
        vireo_kexit_by_reason kr;
        if (!read_percpu(s.maps.kexit_reasons, slot * VIREO_KEXIT_SLOTS + r, kr)) break;
        out.kexit_count[r] += kr.count;
        out.kexit_slot_ns[r] += kr.ns;
    }
}

}  // namespace vireo::probe_parts
