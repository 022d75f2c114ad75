#include "vmm/devices/virtio/virtqueue.h"

#include <atomic>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "vmm/devices/virtio/virtio_abi.h"

namespace vireo {

namespace {

using namespace virtio;

// The index fields are written by the guest while we read them (and the
// reverse), so they are accessed atomically; activate() checked the
// alignment std::atomic_ref needs.
uint16_t load16(std::span<uint8_t> area, uint64_t off, std::memory_order order) {
    return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(area.data() + off)).load(order);
}
void store16(std::span<uint8_t> area, uint64_t off, uint16_t v, std::memory_order order) {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(area.data() + off)).store(v, order);
}

// One descriptor, copied out of guest memory once: every check and every
// use below sees the same values even if the guest rewrites the table.
struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
Desc read_desc(const uint8_t* p) {
    Desc d;
    std::memcpy(&d.addr, p + kDescAddrOff, 8);
    std::memcpy(&d.len, p + kDescLenOff, 4);
    std::memcpy(&d.flags, p + kDescFlagsOff, 2);
    std::memcpy(&d.next, p + kDescNextOff, 2);
    return d;
}

}  // namespace

std::string_view to_string(QueueError e) {
    switch (e) {
        case QueueError::DescOutOfRam: return "descriptor buffer outside guest RAM";
        case QueueError::NextOutOfRange: return "descriptor 'next' out of range";
        case QueueError::ChainTooLong: return "chain longer than the queue (loop)";
        case QueueError::IndirectNotNegotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
        case QueueError::IndirectBadSize: return "indirect table size not a whole number of descriptors";
        case QueueError::IndirectOutOfRam: return "indirect table outside guest RAM";
        case QueueError::IndirectNested: return "nested indirect descriptor";
        case QueueError::IndirectWithNext: return "indirect descriptor with NEXT";
        case QueueError::ReadableAfterWritable: return "device-readable descriptor after a device-writable one";
        case QueueError::AvailIdxJump: return "available index ran ahead by more than the queue size";
        case QueueError::HeadOutOfRange: return "available ring names a descriptor outside the table";
        case QueueError::NotReady: return "queue not ready";
    }
    return "unknown queue error";
}

std::expected<void, std::string> VirtQueue::activate(const QueueAddresses& a, uint16_t size, bool event_idx,
                                                     bool indirect) {
    reset();
    if (size == 0 || size > max_size_ || !std::has_single_bit(size))
        return std::unexpected(fmt::format("queue size {} is not a power of two in [1, {}]", size, max_size_));
    // §2.7: descriptor table 16-byte, driver area 2-byte, device area 4-byte aligned.
    if (a.desc % 16 || a.driver % 2 || a.device % 4)
        return std::unexpected(fmt::format("misaligned rings: desc {:#x}, driver {:#x}, device {:#x}", a.desc,
                                           a.driver, a.device));
    auto desc = mem_->view(a.desc, kDescSize * size);
    auto avail = mem_->view(a.driver, avail_ring_bytes(size));
    auto used = mem_->view(a.device, used_ring_bytes(size));
    if (desc.empty() || avail.empty() || used.empty())
        return std::unexpected(fmt::format("rings outside guest RAM: desc {:#x}, driver {:#x}, device {:#x} (size {})",
                                           a.desc, a.driver, a.device, size));
    addrs_ = a;
    size_ = size;
    desc_ = desc;
    avail_ = avail;
    used_ = used;
    event_idx_ = event_idx;
    indirect_ = indirect;
    // The device starts with notifications on and used.idx as the driver
    // left it (0 after a reset; §2.7.13.1 lets the device assume so).
    last_avail_ = 0;
    used_idx_ = 0;
    signalled_used_ = 0;
    notifications_enabled_ = true;
    store16(used_, 0, 0, std::memory_order_relaxed);
    store16(used_, 2, 0, std::memory_order_release);
    ready_ = true;
    return {};
}

void VirtQueue::reset() {
    ready_ = false;
    broken_ = false;
    broken_reason_ = QueueError::NotReady;
    size_ = 0;
    desc_ = avail_ = used_ = {};
    addrs_ = {};
    last_avail_ = used_idx_ = signalled_used_ = 0;
    event_idx_ = indirect_ = false;
    notifications_enabled_ = true;
}

uint16_t VirtQueue::avail_idx_acquire() const {
    // Acquire: the ring entries and descriptors the driver wrote before it
    // published this index are visible to the reads that follow.
    return load16(avail_, 2, std::memory_order_acquire);
}

uint16_t VirtQueue::pending() {
    if (!ready_ || broken_) return 0;
    uint16_t n = uint16_t(avail_idx_acquire() - last_avail_);
    return n > size_ ? 0 : n;
}

std::expected<bool, PopError> VirtQueue::pop(DescChain& chain) {
    chain.clear();
    if (!ready_) return std::unexpected(PopError{QueueError::NotReady, 0});
    if (broken_) return std::unexpected(PopError{broken_reason_, 0});
    uint16_t avail_idx = avail_idx_acquire();
    uint16_t n = uint16_t(avail_idx - last_avail_);
    if (n == 0) return false;
    if (n > size_) {
        broken_ = true;
        broken_reason_ = QueueError::AvailIdxJump;
        return std::unexpected(PopError{broken_reason_, 0});
    }
    uint16_t head;
    std::memcpy(&head, avail_.data() + 4 + 2 * uint64_t(last_avail_ % size_), 2);
    if (head >= size_) {
        broken_ = true;
        broken_reason_ = QueueError::HeadOutOfRange;
        return std::unexpected(PopError{broken_reason_, head});
    }
    ++last_avail_;
    chain.head = head;
    if (auto r = walk(head, chain); !r) return std::unexpected(PopError{r.error(), head});
    return true;
}

std::expected<void, QueueError> VirtQueue::walk(uint16_t head, DescChain& chain) const {
    // The table being walked: the queue's own, then possibly one indirect
    // table. `budget` bounds the descriptors visited in the current table,
    // so a cycle through `next` ends as ChainTooLong.
    std::span<const uint8_t> table = desc_;
    uint32_t table_len = size_;
    uint32_t budget = size_;
    bool in_indirect = false;
    bool seen_writable = false;
    uint16_t i = head;
    for (;;) {
        if (budget == 0) return std::unexpected(QueueError::ChainTooLong);
        --budget;
        Desc d = read_desc(table.data() + kDescSize * i);
        if (d.flags & kDescFIndirect) {
            if (in_indirect) return std::unexpected(QueueError::IndirectNested);
            if (!indirect_) return std::unexpected(QueueError::IndirectNotNegotiated);
            if (d.flags & kDescFNext) return std::unexpected(QueueError::IndirectWithNext);
            if (d.len == 0 || d.len % kDescSize != 0 || d.len / kDescSize > size_)
                return std::unexpected(QueueError::IndirectBadSize);
            auto t = mem_->view(d.addr, d.len);
            if (t.empty()) return std::unexpected(QueueError::IndirectOutOfRam);
            table = t;
            table_len = d.len / kDescSize;
            budget = table_len;
            in_indirect = true;
            chain.indirect = true;
            i = 0;
            continue;
        }
        bool writable = d.flags & kDescFWrite;
        if (!writable && seen_writable) return std::unexpected(QueueError::ReadableAfterWritable);
        seen_writable |= writable;
        DescSegment seg{d.addr, d.len, writable, {}};
        if (d.len != 0) {
            seg.host = mem_->view(d.addr, d.len);
            if (seg.host.empty()) return std::unexpected(QueueError::DescOutOfRam);
        }
        (writable ? chain.writable_bytes : chain.readable_bytes) += d.len;
        chain.segments.push_back(seg);
        if (!(d.flags & kDescFNext)) return {};
        if (d.next >= table_len) return std::unexpected(QueueError::NextOutOfRange);
        i = d.next;
    }
}

void VirtQueue::push_used(uint16_t head, uint32_t len) {
    if (!ready_) return;
    // Bounds: the used area was validated for `size_` elements at activation
    // and the slot index is reduced modulo size_.
    uint8_t* elem = used_.data() + 4 + 8 * uint64_t(used_idx_ % size_);
    uint32_t id = head;
    std::memcpy(elem, &id, 4);
    std::memcpy(elem + 4, &len, 4);
    ++used_idx_;
}

bool VirtQueue::publish_used() {
    if (!ready_) return false;
    // Release: the element writes are visible before the new index.
    store16(used_, 2, used_idx_, std::memory_order_release);
    // Full barrier: the index store must be visible before we read the
    // driver's used_event/flags, or both sides may skip the interrupt.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t old = signalled_used_;
    if (old == used_idx_) return false;
    bool want;
    if (event_idx_)
        want = need_event(load16(avail_, 4 + 2 * uint64_t(size_), std::memory_order_relaxed), used_idx_, old);
    else
        want = !(load16(avail_, 0, std::memory_order_relaxed) & kAvailFNoInterrupt);
    signalled_used_ = used_idx_;
    return want;
}

void VirtQueue::disable_notifications() {
    if (!ready_ || !notifications_enabled_) return;
    notifications_enabled_ = false;
    // With EVENT_IDX the driver notifies only when its new index passes
    // avail_event; leaving avail_event behind (where it was) keeps it
    // quiet until the index wraps, which at worst costs one notification
    // per 65536 buffers.
    if (!event_idx_) store16(used_, 0, kUsedFNoNotify, std::memory_order_relaxed);
}

bool VirtQueue::enable_notifications() {
    if (!ready_ || broken_) return false;
    notifications_enabled_ = true;
    if (event_idx_)
        store16(used_, 4 + 8 * uint64_t(size_), last_avail_, std::memory_order_relaxed);
    else
        store16(used_, 0, 0, std::memory_order_relaxed);
    // Full barrier: publish the request for notifications before looking at
    // the ring again, pairing with the driver's barrier between its index
    // store and its read of avail_event/flags.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return avail_idx_acquire() != last_avail_;
}

}  // namespace vireo
