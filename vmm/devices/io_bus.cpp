#include "vmm/devices/io_bus.h"

#include <algorithm>
#include <cstring>

#include "vmm/log.h"

namespace vireo {

bool IoBus::add(uint64_t base, uint64_t length, std::shared_ptr<Device> device) {
    if (frozen_ || length == 0 || base + length < base || !device) return false;
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), base,
                               [](const Range& r, uint64_t b) { return r.base < b; });
    if (it != ranges_.end() && it->base < base + length) return false;
    if (it != ranges_.begin() && std::prev(it)->base + std::prev(it)->length > base) return false;
    ranges_.insert(it, Range{base, length, std::move(device)});
    return true;
}

const IoBus::Range* IoBus::find(uint64_t addr) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                               [](uint64_t a, const Range& r) { return a < r.base; });
    if (it == ranges_.begin()) return nullptr;
    --it;
    return addr - it->base < it->length ? &*it : nullptr;
}

void IoBus::note_unhandled(uint64_t addr, bool is_write) {
    // Counted always; logged for the first few only so a guest probing
    // ports cannot flood the log.
    uint64_t n = unhandled_.fetch_add(1, std::memory_order_relaxed);
    if (n < 8)
        log_debug("{}: unhandled {} at {:#x}{}", name_, is_write ? "write" : "read", addr,
                  n == 7 ? " (further ones counted, not logged)" : "");
}

bool IoBus::read(uint64_t addr, std::span<uint8_t> data) {
    if (const Range* r = find(addr)) {
        r->device->read(addr - r->base, data);
        return true;
    }
    std::memset(data.data(), 0xff, data.size());
    note_unhandled(addr, false);
    return false;
}

bool IoBus::write(uint64_t addr, std::span<const uint8_t> data) {
    if (const Range* r = find(addr)) {
        r->device->write(addr - r->base, data);
        return true;
    }
    note_unhandled(addr, true);
    return false;
}

}  // namespace vireo
