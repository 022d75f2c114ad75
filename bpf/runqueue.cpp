// The runqueue probe's loader part (its programs: runqueue.bpf.c).
#include "bpf/probe_maps.h"
#include "bpf/probe_parts.h"

namespace vireo::probe_parts {

using namespace probe_maps;

void size_runqueue(vireo_bpf& s, bool runs, uint32_t vcpus) { bpf_map__set_max_entries(s.maps.runq, runs ? vcpus : 1); }

void zero_runqueue(vireo_bpf& s) { zero_array(s.maps.runq); }

void read_runqueue(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out) {
    vireo_runq q;
    if (!read_percpu(s.maps.runq, slot, q)) return;
    out.sources |= VIREO_TELEMETRY_RUNQUEUE;
    out.runq_waits += q.waits;
    out.runq_wait_ns += q.wait_ns;
    add_hist(out.runq_hist, q.hist);
}

}  // namespace vireo::probe_parts
