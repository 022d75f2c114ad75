// A raw disk image opened for virtio-blk: checked (exists, regular file or
// block device, not empty), locked against a second VM (flock: exclusive
// for a writable image, shared for a read-only one), sized, and told how
// O_DIRECT must align buffers.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "vmm/devices/virtio/virtio_config.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

class DiskImage {
public:
    static constexpr uint64_t kSectorSize = 512;
    static constexpr size_t kSerialLen = 20;  // VIRTIO_BLK_ID_BYTES

    // Every error is one line naming the option and the path.
    static std::expected<DiskImage, std::string> open(const DiskConfig& config);

    int fd() const { return fd_.get(); }
    const DiskConfig& config() const { return config_; }
    const std::string& path() const { return config_.path; }
    bool read_only() const { return config_.read_only; }
    bool direct() const { return config_.direct; }
    uint64_t size_bytes() const { return size_; }
    uint64_t sectors() const { return size_ / kSectorSize; }
    // O_DIRECT alignment of buffer addresses and of lengths/offsets.
    uint32_t dio_mem_align() const { return dio_mem_align_; }
    uint32_t dio_offset_align() const { return dio_offset_align_; }
    // GET_ID: at most 20 bytes, NUL-padded by the device when shorter.
    const std::string& serial() const { return serial_; }

private:
    DiskConfig config_;
    UniqueFd fd_;
    uint64_t size_ = 0;
    uint32_t dio_mem_align_ = 512;
    uint32_t dio_offset_align_ = 512;
    std::string serial_;
};

}  // namespace vireo
