// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): per-VM and
// per-vCPU counters KVM keeps anyway -- exits, halt time and its histogram,
// page faults -- read without BPF or debugfs. Descriptors are read once
// and looked up by name, so vireo uses whatever this kernel offers and a
// missing name is just absent, not an error.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/kvm/unique_fd.h"

namespace vireo {

class BinaryStats {
public:
    struct Descriptor {
        std::string name;
        uint32_t flags = 0;        // KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_*
        int16_t exponent = 0;      // value * base^exponent is in `unit` (ns: -9)
        uint16_t size = 0;         // number of u64 values (1, or the histogram's buckets)
        uint32_t offset = 0;       // bytes into the data block
        uint32_t bucket_size = 0;  // linear histograms only
        uint32_t type() const;     // KVM_STATS_TYPE_*
        uint32_t unit() const;     // KVM_STATS_UNIT_*
    };

    // The values of one read: one pread of the whole data block, so values
    // of one sample belong together.
    class Sample {
    public:
        std::optional<uint64_t> value(std::string_view name) const;
        // All values of a descriptor (a histogram's buckets); empty if absent.
        std::span<const uint64_t> values(std::string_view name) const;

    private:
        friend class BinaryStats;
        const BinaryStats* stats_ = nullptr;
        std::vector<uint64_t> data_;
    };

    // From a VM or vCPU fd. Errors name the ioctl or the bad field.
    static std::expected<BinaryStats, std::string> open(int kvm_object_fd);
    // From a stats fd itself (tests give a memfd holding a fabricated layout).
    static std::expected<BinaryStats, std::string> from_fd(UniqueFd fd);

    const std::string& id() const { return id_; }  // e.g. "kvm-1234/vcpu-0"
    const std::vector<Descriptor>& descriptors() const { return descriptors_; }
    const Descriptor* find(std::string_view name) const;
    std::expected<Sample, std::string> read() const;

private:
    UniqueFd fd_;
    std::string id_;
    std::vector<Descriptor> descriptors_;
    uint64_t data_offset_ = 0;
    size_t data_words_ = 0;  // u64 values in the data block
};

}  // namespace vireo
