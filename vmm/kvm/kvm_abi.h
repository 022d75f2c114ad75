// KVM ioctls whose argument ends in a flexible array.
//
// Why this file exists: linux-libc-dev 6.1 declares those arrays with
// __DECLARE_FLEX_ARRAY, which in C++ adds a one-byte empty struct before
// the array. In C++ sizeof(kvm_cpuid2) is then 12, not 8, the entries start
// at offset 12, and the ioctl numbers (which encode the size) are ones the
// kernel does not know (EINVAL). We use the C layout explicitly.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace vireo::kvm_abi {

// The fixed part of kvm_cpuid2 / kvm_msrs as C lays it out; the entries
// follow immediately (offset 8).
struct Cpuid2Header {
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
};
static_assert(sizeof(Cpuid2Header) == 8 && sizeof(MsrsHeader) == 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

}  // namespace vireo::kvm_abi
