#include "vmm/arch/x86/vcpu_init.h"

#include <cstring>

#include "vmm/arch/x86/cpuid.h"
#include "vmm/log.h"

namespace vireo {

namespace {

constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrCstar = 0xc0000083;
constexpr uint32_t kMsrSyscallMask = 0xc0000084, kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTsc = 0x10, kMsrMiscEnable = 0x1a0, kMsrMtrrDefType = 0x2ff;
constexpr uint64_t kMiscEnableFastString = 1;
constexpr uint64_t kMtrrEnableWriteBack = (1u << 11) | 6;

// LAPIC register offsets and LVT delivery modes.
constexpr size_t kApicLvtLint0 = 0x350, kApicLvtLint1 = 0x360;
constexpr uint32_t kDeliveryExtInt = 7, kDeliveryNmi = 4;

void set_lvt(kvm_lapic_state& lapic, size_t reg, uint32_t mode) {
    uint32_t v;
    std::memcpy(&v, lapic.regs + reg, 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(lapic.regs + reg, &v, 4);
}

std::expected<void, std::string> set_boot_msrs(const Vcpu& vcpu) {
    const kvm_msr_entry wanted[] = {
        {kMsrSysenterCs, 0, 0},  {kMsrSysenterEsp, 0, 0}, {kMsrSysenterEip, 0, 0},
        {kMsrStar, 0, 0},        {kMsrLstar, 0, 0},       {kMsrCstar, 0, 0},
        {kMsrSyscallMask, 0, 0}, {kMsrKernelGsBase, 0, 0}, {kMsrTsc, 0, 0},
        {kMsrMiscEnable, 0, kMiscEnableFastString},       {kMsrMtrrDefType, 0, kMtrrEnableWriteBack},
    };
    // One at a time: a KVM flavour that refuses one boot MSR (PVM refuses
    // some) should not cost us the others. None of them is essential.
    for (const auto& m : wanted)
        if (auto r = vcpu.set_msrs({m}); !r) log_debug("{}", r.error());
    return {};
}

}  // namespace

std::expected<void, std::string> init_vcpu(const KvmSystem& kvm, const Vcpu& vcpu, unsigned count,
                                           const EntryState* entry) {
    if (auto r = vcpu.set_cpuid(normalise_cpuid(kvm.supported_cpuid(), vcpu.index(), count)); !r) return r;
    if (auto r = set_boot_msrs(vcpu); !r) return r;

    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word
    fpu.mxcsr = 0x1f80;  // all SSE exceptions masked
    if (auto r = vcpu.set_fpu(fpu); !r) return r;

    // LINT0 = ExtINT (the PIC), LINT1 = NMI: what a PC BIOS leaves behind
    // and what the MP table advertises.
    auto lapic = vcpu.get_lapic();
    if (!lapic) return std::unexpected(lapic.error());
    set_lvt(*lapic, kApicLvtLint0, kDeliveryExtInt);
    set_lvt(*lapic, kApicLvtLint1, kDeliveryNmi);
    if (auto r = vcpu.set_lapic(*lapic); !r) return r;

    if (!entry) return {};  // an application processor: woken by INIT/SIPI


    kvm_regs regs{};
    regs.rip = entry->rip;
    regs.rflags = 0x2;  // reserved bit 1; IF=0
    switch (entry->mode) {
        case EntryMode::Linux64:
            regs.rsi = entry->rsi;
            regs.rsp = regs.rbp = entry->rsp;
            break;
        case EntryMode::Ring3:
            regs.rflags |= 3u << 12;  // IOPL 3: the guest's `in`/`out` reach our devices
            regs.rdi = vcpu.index();
            regs.rsi = entry->rsi;
            regs.rsp = entry->rsp;
            break;
        case EntryMode::Pvh32:
            regs.rbx = entry->rbx;
            break;
    }
    auto sregs = vcpu.get_sregs();
    if (!sregs) return std::unexpected(sregs.error());
    if (auto r = vcpu.set_sregs(boot_sregs(*sregs, entry->mode)); !r) return r;
    if (auto r = vcpu.set_regs(regs); !r) return r;
    if (entry->mode == EntryMode::Ring3 && vcpu.index() != 0)
        if (auto r = vcpu.set_mp_state(KVM_MP_STATE_RUNNABLE); !r) return r;
    return {};
}

}  // namespace vireo
