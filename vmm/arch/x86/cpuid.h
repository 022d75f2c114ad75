// CPUID as each vCPU sees it: KVM's supported set, normalised per vCPU.
#pragma once

#include <linux/kvm.h>

#include <vector>

namespace vireo {

// Returns the entries for vCPU `index` of `count`: APIC IDs in leaves 1,
// 0xb, 0x1f and 0x8000001e, a flat topology (one socket, `count` cores, one
// thread each), the hypervisor bit, KVM's paravirtual leaves kept (kvmclock),
// and the architectural PMU hidden (this host's KVM has none to offer).
std::vector<kvm_cpuid_entry2> normalise_cpuid(const std::vector<kvm_cpuid_entry2>& supported, unsigned index,
                                              unsigned count);

}  // namespace vireo
