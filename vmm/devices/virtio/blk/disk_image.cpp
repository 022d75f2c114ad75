#include "vmm/devices/virtio/blk/disk_image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/log.h"

namespace vireo {

namespace {

// A serial that tells two images apart even with equal names: the file's
// name (up to 11 characters) and a hash of its device and inode.
std::string derive_serial(const std::string& path, const struct stat& st) {
    std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
    std::string name;
    for (char c : base) {
        if (name.size() == 11) break;
        name += (c > 0x20 && c < 0x7f) ? c : '_';
    }
    uint64_t h = (uint64_t(st.st_dev) * 0x9e3779b97f4a7c15ull) ^ uint64_t(st.st_ino);
    h ^= h >> 32;
    return fmt::format("{}-{:08x}", name, uint32_t(h));
}

}  // namespace

std::expected<DiskImage, std::string> DiskImage::open(const DiskConfig& config) {
    DiskImage d;
    d.config_ = config;
    const std::string& path = config.path;
    auto fail = [&](std::string why) { return std::unexpected(fmt::format("--disk {}: {}", path, why)); };

    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail("is a directory, not a disk image");
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return fail("is not a regular file or a block device");

    int flags = (config.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (config.direct ? O_DIRECT : 0);
    d.fd_.reset(::open(path.c_str(), flags));
    if (!d.fd_) {
        if (errno == EINVAL && config.direct) return fail("its file system does not support O_DIRECT (drop ',direct')");
        if (errno == EACCES || errno == EROFS) return fail(fmt::format("{} (add ',ro' for a read-only disk)", std::strerror(errno)));
        return fail(std::strerror(errno));
    }
    // Lock before anything reads the size: two VMs writing one image
    // corrupt it, so a writable image is exclusive and a read-only one
    // shared (several read-only users are fine, no writer among them).
    if (::flock(d.fd_.get(), (config.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return fail(config.read_only ? "is in use: another process holds it open for writing (flock)"
                                         : "is in use by another process (flock); two guests cannot share a writable disk");
        return fail(fmt::format("flock: {}", std::strerror(errno)));
    }
    if (::fstat(d.fd_.get(), &st) != 0) return fail(fmt::format("fstat: {}", std::strerror(errno)));
    if (S_ISBLK(st.st_mode)) {
        uint64_t bytes = 0;
        if (::ioctl(d.fd_.get(), BLKGETSIZE64, &bytes) != 0) return fail(fmt::format("BLKGETSIZE64: {}", std::strerror(errno)));
        d.size_ = bytes;
    } else {
        d.size_ = uint64_t(st.st_size);
    }
    if (d.size_ < kSectorSize) return fail(d.size_ == 0 ? "is empty (0 bytes)" : fmt::format("is smaller than one 512-byte sector ({} bytes)", d.size_));
    if (d.size_ % kSectorSize)
        log_warn("--disk {}: size {} is not a multiple of 512; the guest sees {} sectors and not the last {} bytes", path,
                 d.size_, d.size_ / kSectorSize, d.size_ % kSectorSize);

    if (config.direct) {
        struct statx sx {};
        if (::statx(d.fd_.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
            sx.stx_dio_mem_align && sx.stx_dio_offset_align) {
            d.dio_mem_align_ = sx.stx_dio_mem_align;
            d.dio_offset_align_ = sx.stx_dio_offset_align;
        } else if (S_ISBLK(st.st_mode)) {
            int ss = 0;
            if (::ioctl(d.fd_.get(), BLKSSZGET, &ss) == 0 && ss > 0) d.dio_mem_align_ = d.dio_offset_align_ = uint32_t(ss);
        }
        // Sectors are 512 bytes: an image whose O_DIRECT offsets must be
        // coarser (4Kn disks) would fail most guest requests.
        if (d.dio_offset_align_ > kSectorSize)
            return fail(fmt::format("O_DIRECT here needs {}-byte aligned offsets, more than the 512-byte sectors "
                                    "virtio-blk uses (drop ',direct')",
                                    d.dio_offset_align_));
    }
    d.serial_ = config.serial.empty() ? derive_serial(path, st) : config.serial;
    if (d.serial_.size() > kSerialLen) d.serial_.resize(kSerialLen);
    return d;
}

}  // namespace vireo
