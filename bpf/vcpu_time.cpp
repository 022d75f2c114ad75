// The vcpu-time probe's loader part (its programs: vcpu_time.bpf.c).
#include "bpf/probe_maps.h"
#include "bpf/probe_parts.h"

namespace vireo::probe_parts {

using namespace probe_maps;

void size_vcpu_time(vireo_bpf& s, bool runs, uint32_t vcpus) { bpf_map__set_max_entries(s.maps.vcpu_time, runs ? vcpus : 1); }

void zero_vcpu_time(vireo_bpf& s) { zero_array(s.maps.vcpu_time); }

void read_vcpu_time(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out) {
    vireo_vcpu_time t;
    if (!read_percpu(s.maps.vcpu_time, slot, t)) return;
    out.sources |= VIREO_TELEMETRY_VCPU_TIME;
    out.runs += t.runs;
    out.in_kvm_run_ns += t.in_run_ns;
    add_hist(out.kvm_run_hist, t.run_hist);
    for (unsigned i = 0; i < VIREO_UEXIT_REASONS; ++i) {
        out.uexits[i] += t.uexits[i];
        out.uexit_ns[i] += t.uexit_ns[i];
    }
    add_hist(out.uexit_hist, t.uexit_hist);
    out.interrupted_runs += t.interrupted;
    out.interrupted_ns += t.interrupted_ns;
}

}  // namespace vireo::probe_parts
