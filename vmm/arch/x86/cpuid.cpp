#include "vmm/arch/x86/cpuid.h"

#include <bit>
#include <cstdint>

namespace vireo {

namespace {
constexpr uint32_t kHypervisorBit = 1u << 31;  // leaf 1 ECX
constexpr uint32_t kHtt = 1u << 28;            // leaf 1 EDX: EBX[23:16] valid

// Bits needed to number `count` cores (x2APIC ID shift of the core level).
uint32_t core_shift(unsigned count) { return count <= 1 ? 0 : uint32_t(std::bit_width(count - 1)); }
}  // namespace

std::vector<kvm_cpuid_entry2> normalise_cpuid(const std::vector<kvm_cpuid_entry2>& supported, unsigned index,
                                              unsigned count) {
    std::vector<kvm_cpuid_entry2> out;
    out.reserve(supported.size());
    for (kvm_cpuid_entry2 e : supported) {
        switch (e.function) {
            case 1:
                e.ebx = (e.ebx & 0x0000ffffu) | (index << 24) | ((count & 0xffu) << 16);
                e.ecx |= kHypervisorBit;
                e.edx |= kHtt;
                break;
            case 4:
                // Deterministic cache parameters: cores sharing per level.
                // EAX[31:26] = cores per package - 1; EAX[25:14] = threads sharing - 1.
                e.eax = (e.eax & 0x3fffu) | ((count - 1) << 26);
                break;
            case 0xa:  // architectural PMU: none
                e.eax = e.ebx = e.ecx = e.edx = 0;
                break;
            case 0xb:
            case 0x1f:
                // Level 0: SMT (1 thread per core); level 1: cores; then invalid.
                if (e.index == 0) {
                    e.eax = 0;
                    e.ebx = 1;
                    e.ecx = (1u << 8) | 0;
                } else if (e.index == 1) {
                    e.eax = core_shift(count);
                    e.ebx = count;
                    e.ecx = (2u << 8) | 1;
                } else {
                    e.eax = e.ebx = 0;
                    e.ecx = e.index;
                }
                e.edx = index;
                break;
            case 0x80000008:
                // ECX[7:0] = cores - 1, ECX[15:12] = APIC ID size.
                e.ecx = (e.ecx & ~0xf0ffu) | ((count - 1) & 0xffu) | (core_shift(count) << 12);
                break;
            case 0x8000001e:
                // Extended APIC ID; compute unit = core, one thread per unit.
                e.eax = index;
                e.ebx = (e.ebx & ~0xffffu) | (index & 0xffu);
                e.ecx = 0;
                break;
            default:
                break;
        }
        out.push_back(e);
    }
    return out;
}

}  // namespace vireo
