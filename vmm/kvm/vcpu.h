// One KVM vCPU: its fd and the shared kvm_run page.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/unique_fd.h"
#include "vmm/kvm/vm.h"

namespace vireo {

class Vcpu {
public:
    static std::expected<Vcpu, std::string> create(const KvmSystem& kvm, const Vm& vm, unsigned index);

    Vcpu() = default;
    Vcpu(Vcpu&&) noexcept;
    Vcpu& operator=(Vcpu&&) noexcept;
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;
    ~Vcpu();

    unsigned index() const { return index_; }
    int fd() const { return fd_.get(); }
    kvm_run* run_state() const { return run_; }

    // KVM_RUN; returns 0 or -errno (EINTR/EAGAIN are normal: a signal kicked us).
    int run() const;

    std::expected<void, std::string> set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const;
    std::expected<void, std::string> set_msrs(const std::vector<kvm_msr_entry>& msrs) const;
    std::expected<kvm_regs, std::string> get_regs() const;
    std::expected<void, std::string> set_regs(const kvm_regs& regs) const;
    std::expected<kvm_sregs, std::string> get_sregs() const;
    std::expected<void, std::string> set_sregs(const kvm_sregs& sregs) const;
    std::expected<void, std::string> set_fpu(const kvm_fpu& fpu) const;
    std::expected<kvm_lapic_state, std::string> get_lapic() const;
    std::expected<void, std::string> set_lapic(const kvm_lapic_state& lapic) const;
    std::expected<void, std::string> set_mp_state(uint32_t state) const;
    // TSC frequency in kHz as KVM sees it (0 if unknown).
    uint32_t tsc_khz() const;

private:
    UniqueFd fd_;
    kvm_run* run_ = nullptr;
    size_t run_size_ = 0;
    unsigned index_ = 0;
};

}  // namespace vireo
