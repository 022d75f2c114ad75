// The CPU state vireo hands a guest at its first instruction: identity page
// tables, a GDT and segment registers for 64-bit ring 0 (Linux's 64-bit boot
// protocol), 64-bit ring 3 (the vireo ring-3 protocol) or 32-bit flat
// protected mode (PVH).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <string>

#include "vmm/kvm/guest_memory.h"

namespace vireo {

enum class EntryMode {
    Linux64,  // 64-bit, CPL0, paging on, rsi = boot_params
    Ring3,    // 64-bit, CPL3, IOPL3, rdi = vCPU index, rsi = vireo_boot_info
    Pvh32,    // 32-bit flat protected mode, paging off, ebx = hvm_start_info
};

// GDT selectors (Linux's __BOOT_CS/__BOOT_DS are 0x10/0x18).
// User data then user code, as SYSRET expects; the 64-bit TSS takes two slots.
constexpr uint16_t kBootCs = 0x10, kBootDs = 0x18;
constexpr uint16_t kUserDs = 0x2b, kUserCs = 0x33;  // indexes 5 and 6, RPL 3
constexpr uint16_t kBootCs32 = 0x38, kBootTss = 0x40;
constexpr unsigned kGdtEntries = 10;

// Writes the GDT, an empty IDT, a TSS and identity page tables into guest
// memory. Ring 0 maps [0, 4 GiB) plus RAM above; ring 3 maps only RAM below
// the hole (rounded up to 2 MiB) and the MMIO hole, all user-accessible.
std::expected<void, std::string> write_boot_cpu_tables(const GuestMemory& mem, uint64_t ram_size, EntryMode mode);

// Segment and control registers for `mode`, starting from KVM's defaults.
kvm_sregs boot_sregs(kvm_sregs sregs, EntryMode mode);

}  // namespace vireo
