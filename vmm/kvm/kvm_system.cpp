#include "vmm/kvm/kvm_system.h"

#include "vmm/kvm/kvm_abi.h"
#include "vmm/security/privileges.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace vireo {

namespace {

struct RequiredCap {
    long cap;
    const char* name;
};

// What the machine model needs; checked before any VM is created.
constexpr RequiredCap kRequired[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

}  // namespace

int KvmSystem::check_extension(long cap) const {
    int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

std::expected<KvmSystem, std::string> KvmSystem::open(const char* path) {
    KvmSystem kvm;
    // With --user, /dev/kvm was opened once before the drop and is kept
    // (vmm/security/privileges.h): a rebuilt machine gets a copy of it.
    int kept = security::kept_kvm_fd();
    if (kept >= 0 && std::strcmp(path, "/dev/kvm") == 0)
        kvm.fd_.reset(::fcntl(kept, F_DUPFD_CLOEXEC, 3));
    else
        kvm.fd_.reset(::open(path, O_RDWR | O_CLOEXEC));
    if (!kvm.fd_) {
        int err = errno;
        if (err == ENOENT)
            return std::unexpected(fmt::format(
                "{}: no such device — KVM is not available on this host (load kvm_intel/kvm_amd, "
                "or run inside a VM with nested virtualization)", path));
        if (err == EACCES || err == EPERM)
            return std::unexpected(fmt::format(
                "{}: permission denied — run as a member of the 'kvm' group or as root", path));
        return std::unexpected(fmt::format("{}: {}", path, std::strerror(err)));
    }
    int version = ::ioctl(kvm.fd_.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return std::unexpected(
            fmt::format("{}: KVM API version {} (vireo needs {})", path, version, KVM_API_VERSION));
    for (const auto& req : kRequired)
        if (kvm.check_extension(req.cap) <= 0)
            return std::unexpected(fmt::format("{}: this KVM lacks {}, which vireo needs", path, req.name));

    int mmap_size = ::ioctl(kvm.fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0) return std::unexpected(fmt::format("{}: KVM_GET_VCPU_MMAP_SIZE failed", path));
    kvm.vcpu_mmap_size_ = size_t(mmap_size);
    kvm.max_vcpus_ = kvm.check_extension(KVM_CAP_MAX_VCPUS);
    if (kvm.max_vcpus_ <= 0) kvm.max_vcpus_ = kvm.check_extension(KVM_CAP_NR_VCPUS);
    if (kvm.max_vcpus_ <= 0) kvm.max_vcpus_ = 4;

    // KVM_GET_SUPPORTED_CPUID reports E2BIG until the buffer is large
    // enough; KVM_MAX_CPUID_ENTRIES (256) is enough everywhere, and some
    // kernels refuse more than that with EINVAL.
    for (size_t n : {size_t(256), size_t(80)}) {
        std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) + n * sizeof(kvm_cpuid_entry2));
        kvm_abi::Cpuid2Header hdr{uint32_t(n), 0};
        std::memcpy(buf.data(), &hdr, sizeof hdr);
        if (::ioctl(kvm.fd_.get(), kvm_abi::kGetSupportedCpuid, buf.data()) == 0) {
            std::memcpy(&hdr, buf.data(), sizeof hdr);
            kvm.cpuid_.resize(std::min<size_t>(hdr.nent, n));
            std::memcpy(kvm.cpuid_.data(), buf.data() + sizeof hdr, kvm.cpuid_.size() * sizeof(kvm_cpuid_entry2));
            break;
        }
        if (errno != E2BIG && errno != EINVAL) return std::unexpected(fmt::format("{}: KVM_GET_SUPPORTED_CPUID: {}", path, std::strerror(errno)));
    }
    if (kvm.cpuid_.empty()) return std::unexpected(fmt::format("{}: KVM_GET_SUPPORTED_CPUID returned nothing", path));

    struct stat st {};
    kvm.is_pvm_ = ::stat("/sys/module/kvm_pvm", &st) == 0;
    return kvm;
}

}  // namespace vireo
