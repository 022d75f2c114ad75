// Puts a freshly created vCPU into the state of its first instruction.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "vmm/arch/x86/long_mode.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"

namespace vireo {

struct EntryState {
    EntryMode mode = EntryMode::Linux64;
    uint64_t rip = 0;
    uint64_t rsi = 0;  // Linux64: boot_params; Ring3: vireo_boot_info
    uint64_t rbx = 0;  // Pvh32: hvm_start_info
    uint64_t rsp = 0;  // Ring3: the vCPU's own stack top
};

// CPUID, boot MSRs, FPU, LAPIC LINT0/LINT1 for every vCPU; registers for
// the boot vCPU (and for every vCPU in ring-3 mode, which starts them all).
std::expected<void, std::string> init_vcpu(const KvmSystem& kvm, const Vcpu& vcpu, unsigned count,
                                           const EntryState* entry);

}  // namespace vireo
