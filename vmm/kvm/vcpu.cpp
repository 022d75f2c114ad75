#include "vmm/kvm/vcpu.h"

#include "vmm/kvm/kvm_abi.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace vireo {

namespace {
std::string ioctl_error(unsigned index, const char* what) {
    return fmt::format("vCPU {}: {}: {}", index, what, std::strerror(errno));
}
}  // namespace

std::expected<Vcpu, std::string> Vcpu::create(const KvmSystem& kvm, const Vm& vm, unsigned index) {
    Vcpu v;
    v.index_ = index;
    v.fd_.reset(::ioctl(vm.fd(), KVM_CREATE_VCPU, index));
    if (!v.fd_) return std::unexpected(ioctl_error(index, "KVM_CREATE_VCPU"));
    void* p = ::mmap(nullptr, kvm.vcpu_mmap_size(), PROT_READ | PROT_WRITE, MAP_SHARED, v.fd_.get(), 0);
    if (p == MAP_FAILED) return std::unexpected(ioctl_error(index, "mmap kvm_run"));
    v.run_ = static_cast<kvm_run*>(p);
    v.run_size_ = kvm.vcpu_mmap_size();
    return v;
}

Vcpu::Vcpu(Vcpu&& o) noexcept
    : fd_(std::move(o.fd_)), run_(std::exchange(o.run_, nullptr)), run_size_(o.run_size_), index_(o.index_) {}

Vcpu& Vcpu::operator=(Vcpu&& o) noexcept {
    if (this != &o) {
        if (run_) ::munmap(run_, run_size_);
        fd_ = std::move(o.fd_);
        run_ = std::exchange(o.run_, nullptr);
        run_size_ = o.run_size_;
        index_ = o.index_;
    }
    return *this;
}

Vcpu::~Vcpu() {
    if (run_) ::munmap(run_, run_size_);
}

int Vcpu::run() const { return ::ioctl(fd_.get(), KVM_RUN, 0) == 0 ? 0 : -errno; }

std::expected<void, std::string> Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const {
    std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) + entries.size() * sizeof(kvm_cpuid_entry2));
    kvm_abi::Cpuid2Header hdr{uint32_t(entries.size()), 0};
    std::memcpy(buf.data(), &hdr, sizeof hdr);
    std::memcpy(buf.data() + sizeof hdr, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
    if (::ioctl(fd_.get(), kvm_abi::kSetCpuid2, buf.data()) != 0) return std::unexpected(ioctl_error(index_, "KVM_SET_CPUID2"));
    return {};
}

std::expected<void, std::string> Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) const {
    std::vector<uint8_t> buf(sizeof(kvm_abi::MsrsHeader) + msrs.size() * sizeof(kvm_msr_entry));
    kvm_abi::MsrsHeader hdr{uint32_t(msrs.size()), 0};
    std::memcpy(buf.data(), &hdr, sizeof hdr);
    std::memcpy(buf.data() + sizeof hdr, msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
    int n = ::ioctl(fd_.get(), kvm_abi::kSetMsrs, buf.data());
    if (n < 0) return std::unexpected(ioctl_error(index_, "KVM_SET_MSRS"));
    if (size_t(n) != msrs.size())
        return std::unexpected(fmt::format("vCPU {}: KVM_SET_MSRS: MSR {:#x} refused", index_, msrs[size_t(n)].index));
    return {};
}

#define VIREO_GET(type, req, name)                                                        \
    std::expected<type, std::string> Vcpu::name() const {                                 \
        type v{};                                                                         \
        if (::ioctl(fd_.get(), req, &v) != 0) return std::unexpected(ioctl_error(index_, #req)); \
        return v;                                                                         \
    }
#define VIREO_SET(type, req, name)                                                            \
    std::expected<void, std::string> Vcpu::name(const type& v) const {                       \
        if (::ioctl(fd_.get(), req, &v) != 0) return std::unexpected(ioctl_error(index_, #req)); \
        return {};                                                                            \
    }
VIREO_GET(kvm_regs, KVM_GET_REGS, get_regs)
VIREO_SET(kvm_regs, KVM_SET_REGS, set_regs)
VIREO_GET(kvm_sregs, KVM_GET_SREGS, get_sregs)
VIREO_SET(kvm_sregs, KVM_SET_SREGS, set_sregs)
VIREO_SET(kvm_fpu, KVM_SET_FPU, set_fpu)
VIREO_GET(kvm_lapic_state, KVM_GET_LAPIC, get_lapic)
VIREO_SET(kvm_lapic_state, KVM_SET_LAPIC, set_lapic)
#undef VIREO_GET
#undef VIREO_SET

std::expected<void, std::string> Vcpu::set_mp_state(uint32_t state) const {
    kvm_mp_state mp{state};
    if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &mp) != 0) return std::unexpected(ioctl_error(index_, "KVM_SET_MP_STATE"));
    return {};
}

uint32_t Vcpu::tsc_khz() const {
    int r = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
    return r > 0 ? uint32_t(r) : 0;
}

}  // namespace vireo
