// The driver's side of a split virtqueue, written by hand into guest memory
// so tests can build any ring, well-formed or not.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/devices/virtio/virtqueue.h"
#include "vmm/kvm/guest_memory.h"

namespace vireo::test {

// Guest RAM for virtio tests: `size` bytes at guest address 0 (a real
// memfd mapping, as in a VM, so discard() works too).
inline GuestMemory make_guest_memory(uint64_t size = 4u << 20) {
    auto m = GuestMemory::create({{0, size}}, false);
    if (!m) throw std::runtime_error(m.error());
    return std::move(*m);
}

class TestRing {
public:
    // Descriptor table at `base`, the available ring after it, the used ring
    // after that (4-byte aligned).
    TestRing(const GuestMemory& mem, uint64_t base, uint16_t size) : mem_(mem), size_(size) {
        addrs_.desc = base;
        addrs_.driver = base + 16ull * size;
        addrs_.device = (addrs_.driver + virtio::avail_ring_bytes(size) + 3) & ~3ull;
        std::memset(mem_.view(base, addrs_.device + virtio::used_ring_bytes(size) - base).data(), 0,
                    addrs_.device + virtio::used_ring_bytes(size) - base);
    }
    const QueueAddresses& addresses() const { return addrs_; }
    uint16_t size() const { return size_; }

    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
        write_desc(addrs_.desc, i, addr, len, flags, next);
    }
    // A descriptor in any table (indirect tables included).
    void write_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
        uint8_t d[16];
        std::memcpy(d, &addr, 8);
        std::memcpy(d + 8, &len, 4);
        std::memcpy(d + 12, &flags, 2);
        std::memcpy(d + 14, &next, 2);
        mem_.write(table + 16ull * i, d);
    }
    // Puts `head` in the next available slot and publishes the index.
    void make_available(uint16_t head) {
        put16(addrs_.driver + 4 + 2ull * (avail_idx_ % size_), head);
        ++avail_idx_;
        put16(addrs_.driver + 2, avail_idx_);
    }
    void set_avail_idx(uint16_t idx) {
        avail_idx_ = idx;
        put16(addrs_.driver + 2, idx);
    }
    void set_avail_flags(uint16_t f) { put16(addrs_.driver, f); }
    void set_used_event(uint16_t e) { put16(addrs_.driver + 4 + 2ull * size_, e); }

    uint16_t used_idx() const { return get16(addrs_.device + 2); }
    uint16_t used_flags() const { return get16(addrs_.device); }
    uint16_t avail_event() const { return get16(addrs_.device + 4 + 8ull * size_); }
    // Used element `i` (mod size): {id, len}.
    std::pair<uint32_t, uint32_t> used(uint16_t i) const {
        uint32_t v[2];
        mem_.read(addrs_.device + 4 + 8ull * (i % size_), {reinterpret_cast<uint8_t*>(v), 8});
        return {v[0], v[1]};
    }

private:
    void put16(uint64_t addr, uint16_t v) { mem_.write(addr, {reinterpret_cast<const uint8_t*>(&v), 2}); }
    uint16_t get16(uint64_t addr) const {
        uint16_t v = 0;
        mem_.read(addr, {reinterpret_cast<uint8_t*>(&v), 2});
        return v;
    }
    const GuestMemory& mem_;
    uint16_t size_;
    QueueAddresses addrs_;
    uint16_t avail_idx_ = 0;
};

}  // namespace vireo::test
