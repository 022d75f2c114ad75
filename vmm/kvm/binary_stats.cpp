#include "vmm/kvm/binary_stats.h"

#include <fmt/format.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vireo {

namespace {

// struct kvm_stats_header and the fixed part of struct kvm_stats_desc, as
// the ABI lays them out. The uapi kvm_stats_desc ends in a flexible array
// whose sizeof differs between C and C++ (__DECLARE_FLEX_ARRAY), so the
// fixed part is spelled out: the name follows at byte 16.
struct StatsHeader {
    uint32_t flags, name_size, num_desc, id_offset, desc_offset, data_offset;
};
struct StatsDescFixed {
    uint32_t flags;
    int16_t exponent;
    uint16_t size;
    uint32_t offset;
    uint32_t bucket_size;
};
static_assert(sizeof(StatsHeader) == 24 && sizeof(StatsDescFixed) == 16);

// Bounds for a fd we did not lay out ourselves: KVM uses 48-byte names and
// tens of descriptors; anything far beyond is a broken or hostile file.
constexpr uint32_t kMaxNameSize = 4096;
constexpr uint32_t kMaxDescriptors = 1u << 16;
constexpr uint32_t kMaxValues = 1u << 16;

bool pread_all(int fd, void* buf, size_t len, uint64_t offset) {
    auto* p = static_cast<uint8_t*>(buf);
    while (len > 0) {
        ssize_t n = ::pread(fd, p, len, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= size_t(n);
        offset += uint64_t(n);
    }
    return true;
}

std::string read_error(const char* what) {
    return fmt::format("KVM binary stats: reading the {}: {}", what, errno ? std::strerror(errno) : "short read");
}

}  // namespace

uint32_t BinaryStats::Descriptor::type() const { return flags & KVM_STATS_TYPE_MASK; }
uint32_t BinaryStats::Descriptor::unit() const { return flags & KVM_STATS_UNIT_MASK; }

std::expected<BinaryStats, std::string> BinaryStats::open(int kvm_object_fd) {
    int fd = ::ioctl(kvm_object_fd, KVM_GET_STATS_FD, 0);
    if (fd < 0) return std::unexpected(fmt::format("KVM_GET_STATS_FD: {}", std::strerror(errno)));
    return from_fd(UniqueFd(fd));
}

std::expected<BinaryStats, std::string> BinaryStats::from_fd(UniqueFd fd) {
    BinaryStats s;
    StatsHeader h{};
    errno = 0;
    if (!pread_all(fd.get(), &h, sizeof h, 0)) return std::unexpected(read_error("header"));
    if (h.name_size == 0 || h.name_size > kMaxNameSize)
        return std::unexpected(fmt::format("KVM binary stats: name size {} is out of range", h.name_size));
    if (h.num_desc > kMaxDescriptors)
        return std::unexpected(fmt::format("KVM binary stats: {} descriptors is too many", h.num_desc));

    std::string id(h.name_size, '\0');
    if (!pread_all(fd.get(), id.data(), id.size(), h.id_offset)) return std::unexpected(read_error("id"));
    id.resize(::strnlen(id.data(), id.size()));
    s.id_ = std::move(id);

    const size_t desc_size = sizeof(StatsDescFixed) + h.name_size;
    std::vector<uint8_t> raw(desc_size * h.num_desc);
    if (!raw.empty() && !pread_all(fd.get(), raw.data(), raw.size(), h.desc_offset))
        return std::unexpected(read_error("descriptors"));
    uint64_t words = 0;
    for (uint32_t i = 0; i < h.num_desc; ++i) {
        const uint8_t* p = raw.data() + size_t(i) * desc_size;
        StatsDescFixed d;
        std::memcpy(&d, p, sizeof d);
        const char* name = reinterpret_cast<const char*>(p + sizeof d);
        Descriptor desc{
            std::string(name, ::strnlen(name, h.name_size)), d.flags, d.exponent, d.size, d.offset, d.bucket_size};
        // Values are u64s; an unaligned or oversized entry cannot be read
        // safely, so it is rejected with its name.
        if (d.offset % 8 != 0 || d.size == 0 || d.size > kMaxValues)
            return std::unexpected(fmt::format("KVM binary stats: descriptor '{}' has offset {} and size {}", desc.name,
                                               d.offset, d.size));
        words = std::max<uint64_t>(words, d.offset / 8 + d.size);
        s.descriptors_.push_back(std::move(desc));
    }
    if (words > uint64_t(kMaxDescriptors) * kMaxValues)
        return std::unexpected(std::string("KVM binary stats: data block is too large"));
    s.data_offset_ = h.data_offset;
    s.data_words_ = size_t(words);
    s.fd_ = std::move(fd);
    return s;
}

const BinaryStats::Descriptor* BinaryStats::find(std::string_view name) const {
    for (const auto& d : descriptors_)
        if (d.name == name) return &d;
    return nullptr;
}

std::expected<BinaryStats::Sample, std::string> BinaryStats::read() const {
    Sample sample;
    sample.stats_ = this;
    sample.data_.resize(data_words_);
    errno = 0;
    if (data_words_ && !pread_all(fd_.get(), sample.data_.data(), data_words_ * 8, data_offset_))
        return std::unexpected(read_error("data"));
    return sample;
}

std::span<const uint64_t> BinaryStats::Sample::values(std::string_view name) const {
    if (!stats_) return {};
    const Descriptor* d = stats_->find(name);
    if (!d) return {};
    return std::span<const uint64_t>(data_).subspan(d->offset / 8, d->size);
}

std::optional<uint64_t> BinaryStats::Sample::value(std::string_view name) const {
    auto v = values(name);
    if (v.empty()) return std::nullopt;
    return v[0];
}

}  // namespace vireo
