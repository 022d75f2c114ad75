// /dev/kvm: opened once, checked up front, so a missing capability is one
// clear line at start-up instead of a failed ioctl later.
#pragma once

#include <linux/kvm.h>

#include <expected>
#include <string>
#include <vector>

#include "vmm/kvm/unique_fd.h"

namespace vireo {

class KvmSystem {
public:
    // Opens /dev/kvm (or `path`), checks the API version and every capability
    // vireo relies on. Errors name the device and what is missing.
    static std::expected<KvmSystem, std::string> open(const char* path = "/dev/kvm");

    int fd() const { return fd_.get(); }
    int check_extension(long cap) const;
    int max_vcpus() const { return max_vcpus_; }
    size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
    // KVM_GET_SUPPORTED_CPUID, fetched once.
    const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return cpuid_; }
    // True when this KVM is the nested PVM flavour (guest ring 0 emulated).
    bool is_pvm() const { return is_pvm_; }

private:
    UniqueFd fd_;
    int max_vcpus_ = 0;
    size_t vcpu_mmap_size_ = 0;
    bool is_pvm_ = false;
    std::vector<kvm_cpuid_entry2> cpuid_;
};

}  // namespace vireo
