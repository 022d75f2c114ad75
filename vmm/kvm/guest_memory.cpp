#include "vmm/kvm/guest_memory.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo {

std::expected<GuestMemory, std::string> GuestMemory::create(const std::vector<Layout>& layout, bool hugepages) {
    GuestMemory mem;
    for (const auto& l : layout) {
        if (l.size == 0) continue;
        if (hugepages && (l.size % (2u << 20)) != 0)
            return std::unexpected(fmt::format("--mem: {} bytes is not a multiple of 2 MiB, as hugepages need", l.size));
        unsigned flags = MFD_CLOEXEC | (hugepages ? MFD_HUGETLB | MFD_HUGE_2MB : 0);
        GuestRegion r;
        r.guest_addr = l.guest_addr;
        r.size = l.size;
        r.memfd.reset(::memfd_create("vireo-guest-ram", flags));
        if (!r.memfd) return std::unexpected(fmt::format("guest memory: memfd_create: {}", std::strerror(errno)));
        if (::ftruncate(r.memfd.get(), off_t(l.size)) != 0)
            return std::unexpected(fmt::format("guest memory: cannot size {} MiB: {}", l.size >> 20, std::strerror(errno)));
        // MAP_NORESERVE: guest RAM is committed as the guest touches it, like
        // every VMM; the balloon gives it back.
        void* p = ::mmap(nullptr, l.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r.memfd.get(), 0);
        if (p == MAP_FAILED)
            return std::unexpected(fmt::format("guest memory: cannot map {} MiB: {}{}", l.size >> 20, std::strerror(errno),
                                               hugepages ? " (are hugepages reserved in /proc/sys/vm/nr_hugepages?)" : ""));
        r.host = static_cast<uint8_t*>(p);
        // Keep guest RAM out of vireo's core dumps: it is the guest's data.
        ::madvise(p, l.size, MADV_DONTDUMP);
        mem.regions_.push_back(std::move(r));
    }
    return mem;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept : regions_(std::move(other.regions_)) { other.regions_.clear(); }

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        regions_ = std::move(other.regions_);
        other.regions_.clear();
    }
    return *this;
}

GuestMemory::~GuestMemory() { unmap_all(); }

void GuestMemory::unmap_all() {
    for (auto& r : regions_)
        if (r.host) ::munmap(r.host, r.size);
    regions_.clear();
}

std::span<uint8_t> GuestMemory::view(uint64_t addr, uint64_t len) const {
    for (const auto& r : regions_) {
        // Written so that no sum can overflow: addr - base < size and
        // len <= size - (addr - base).
        if (addr >= r.guest_addr && addr - r.guest_addr < r.size && len <= r.size - (addr - r.guest_addr))
            return {r.host + (addr - r.guest_addr), size_t(len)};
    }
    return {};
}

bool GuestMemory::write(uint64_t addr, std::span<const uint8_t> data) const {
    auto v = view(addr, data.size());
    if (v.empty() && !data.empty()) return false;
    if (!data.empty()) std::memcpy(v.data(), data.data(), data.size());
    return true;
}

bool GuestMemory::read(uint64_t addr, std::span<uint8_t> out) const {
    auto v = view(addr, out.size());
    if (v.empty() && !out.empty()) return false;
    if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
    return true;
}

uint64_t GuestMemory::total_size() const {
    uint64_t t = 0;
    for (const auto& r : regions_) t += r.size;
    return t;
}

bool GuestMemory::discard(uint64_t addr, uint64_t len) const {
    for (const auto& r : regions_) {
        if (addr >= r.guest_addr && addr - r.guest_addr < r.size && len <= r.size - (addr - r.guest_addr))
            return ::fallocate(r.memfd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               off_t(addr - r.guest_addr), off_t(len)) == 0;
    }
    return false;
}

}  // namespace vireo
