// Building and printing telemetry records (include/vireo/telemetry.h) from
// their sources: the VMM's own counters, KVM's binary stats, the probes.
#pragma once

#include <string>
#include <vector>

#include "vireo/telemetry.h"
#include "vmm/kvm/binary_stats.h"

namespace vireo {

struct VcpuExitCounters;

// The VMM's own exit counters of one vCPU.
void add_vmm_counters(const VcpuExitCounters& counters, vireo_vcpu_telemetry& out);
// The binary-stats fields of one vCPU, by descriptor name; a name this
// kernel lacks leaves its field 0. A histogram with another bucket count
// than ours keeps its first buckets and folds the rest into the last.
void add_binary_stats(const BinaryStats::Sample& sample, vireo_vcpu_telemetry& out);
// Guest totals from its vCPUs; marks vCPUs whose kvm_exit/kvm_entry are
// attached but silent (VIREO_TELEMETRY_KERNEL_EXITS_SILENT).
void finish_guest(Telemetry& t);

// "io", "mmio", ... for a KVM_EXIT_* value; "reason-N" for others.
std::string kvm_exit_name(unsigned reason);
// Non-empty buckets, "[1us,2us):3 [2us,4us):5"; "" if empty.
std::string format_hist(const vireo_hist& h);
// The --stats lines (without the "stats: " prefix): key=value pairs a test
// can parse, one line per vCPU and source, then histograms.
std::vector<std::string> format_telemetry(const Telemetry& t);

}  // namespace vireo
