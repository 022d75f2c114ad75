// Guest RAM: memfd-backed regions mapped into vireo, with bounds-checked
// views. Every guest-supplied address goes through `view()` or `at()`, which
// return an empty span/nullptr instead of reading outside guest RAM.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "vmm/kvm/unique_fd.h"

namespace vireo {

struct GuestRegion {
    uint64_t guest_addr = 0;
    uint64_t size = 0;
    uint8_t* host = nullptr;
    UniqueFd memfd;
};

class GuestMemory {
public:
    struct Layout {
        uint64_t guest_addr;
        uint64_t size;
    };
    // Creates one memfd + mapping per region. With `hugepages`, regions are
    // backed by 2 MiB hugetlbfs pages (fails clearly if none are reserved).
    static std::expected<GuestMemory, std::string> create(const std::vector<Layout>& layout, bool hugepages);

    GuestMemory() = default;
    GuestMemory(GuestMemory&&) noexcept;
    GuestMemory& operator=(GuestMemory&&) noexcept;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    // A view of [addr, addr+len) if it lies inside one region, else empty.
    std::span<uint8_t> view(uint64_t addr, uint64_t len) const;
    bool contains(uint64_t addr, uint64_t len) const { return len == 0 || !view(addr, len).empty(); }
    // Copies `data` to guest address `addr`; false if out of range.
    bool write(uint64_t addr, std::span<const uint8_t> data) const;
    bool read(uint64_t addr, std::span<uint8_t> out) const;

    template <typename T>
    T* object_at(uint64_t addr) const {
        auto v = view(addr, sizeof(T));
        return v.empty() ? nullptr : reinterpret_cast<T*>(v.data());
    }

    const std::vector<GuestRegion>& regions() const { return regions_; }
    uint64_t total_size() const;
    // Gives pages back to the host (balloon): MADV_REMOVE on the memfd range.
    bool discard(uint64_t addr, uint64_t len) const;

private:
    void unmap_all();
    std::vector<GuestRegion> regions_;
};

}  // namespace vireo
