// A split virtqueue (virtio 1.2 §2.7) seen from the device: the walker that
// turns what the guest put in the available ring into a validated chain of
// guest-memory segments, and the used-ring writer.
//
// The guest is hostile. Everything read from guest memory is read once into
// a local and then checked: every descriptor's [addr, addr+len) lies inside
// one guest RAM region, a chain visits at most `size` descriptors (so a loop
// ends), an indirect table is a whole number of descriptors inside RAM, is
// not nested and not chained, device-readable descriptors come before
// device-writable ones, and the available index never runs more than `size`
// ahead of what the device consumed. A bad chain is an error for that chain
// only (its head is known, so the device can fail the request and return the
// head); a bad ring (index jump, head out of range) breaks the queue, and the
// transport then sets DEVICE_NEEDS_RESET. Nothing here reads or writes
// outside guest RAM.
//
// Not thread-safe: one thread (the guest's I/O thread, under the device
// lock) walks a queue at a time.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "vmm/kvm/guest_memory.h"

namespace vireo {

// One descriptor of a chain, after validation.
struct DescSegment {
    uint64_t addr = 0;
    uint32_t len = 0;
    bool writable = false;        // device-writable (VIRTQ_DESC_F_WRITE)
    std::span<uint8_t> host;      // [addr, addr+len) in vireo's mapping; empty iff len == 0
};

struct DescChain {
    uint16_t head = 0;
    std::vector<DescSegment> segments;  // readable ones first, then writable ones
    uint64_t readable_bytes = 0;
    uint64_t writable_bytes = 0;
    bool indirect = false;              // came (partly) from an indirect table
    void clear() {
        segments.clear();
        readable_bytes = writable_bytes = 0;
        indirect = false;
    }
};

enum class QueueError : uint8_t {
    // Chain errors: the head is valid; fail this request, the queue goes on.
    DescOutOfRam,          // a buffer is not inside guest RAM
    NextOutOfRange,        // `next` points outside the table
    ChainTooLong,          // more descriptors than the queue size: a loop
    IndirectNotNegotiated,
    IndirectBadSize,       // length 0 or not a multiple of 16, or more entries than the queue size
    IndirectOutOfRam,
    IndirectNested,        // an indirect descriptor inside an indirect table
    IndirectWithNext,      // INDIRECT and NEXT together
    ReadableAfterWritable, // direction order violated
    // Ring errors: the queue cannot go on; the device needs a reset.
    AvailIdxJump,          // avail.idx moved more than `size` past what was consumed
    HeadOutOfRange,        // avail.ring[] names a descriptor >= size
    NotReady,
};

std::string_view to_string(QueueError e);
inline bool is_ring_error(QueueError e) { return e >= QueueError::AvailIdxJump; }

struct PopError {
    QueueError error;
    uint16_t head;  // meaningful for chain errors
};

// Guest addresses of the three parts of a queue, as the driver wrote them.
struct QueueAddresses {
    uint64_t desc = 0;
    uint64_t driver = 0;  // available ring
    uint64_t device = 0;  // used ring
};

class VirtQueue {
public:
    VirtQueue(const GuestMemory& mem, uint16_t max_size) : mem_(&mem), max_size_(max_size) {}

    uint16_t max_size() const { return max_size_; }
    uint16_t size() const { return size_; }
    bool ready() const { return ready_; }
    bool broken() const { return broken_; }

    // Checks the driver's configuration (size a power of two <= max, each
    // area aligned as §2.7 says and inside one RAM region) and makes the
    // queue ready. On error the queue stays not ready.
    std::expected<void, std::string> activate(const QueueAddresses& addrs, uint16_t size, bool event_idx,
                                              bool indirect);
    // Back to the state after a device reset: not ready, indices 0.
    void reset();
    void disable() { ready_ = false; }

    // The next available chain: true and `chain` filled, false if the ring
    // is empty, or an error. After a ring error the queue is broken and
    // every later pop fails with it.
    std::expected<bool, PopError> pop(DescChain& chain);
    // Available entries not yet popped (0 if the ring is broken).
    uint16_t pending();
    // Appends a used element; it is published by publish_used().
    void push_used(uint16_t head, uint32_t len);
    // Publishes pushed elements (release: element writes before the index)
    // and returns whether the driver wants an interrupt for them (EVENT_IDX
    // used_event, else the NO_INTERRUPT flag).
    bool publish_used();

    // Notification suppression (§2.7.7 / §2.7.10). disable: the device is
    // busy and will look at the ring again by itself. enable: ask to be
    // notified for the next buffer; returns true if buffers arrived in the
    // meantime (the caller must process them: no notification will come).
    void disable_notifications();
    bool enable_notifications();

    uint16_t last_avail() const { return last_avail_; }
    uint16_t used_idx() const { return used_idx_; }
    const QueueAddresses& addresses() const { return addrs_; }
    bool event_idx() const { return event_idx_; }

private:
    uint16_t avail_idx_acquire() const;
    std::expected<void, QueueError> walk(uint16_t head, DescChain& chain) const;

    const GuestMemory* mem_;
    uint16_t max_size_;
    uint16_t size_ = 0;
    bool ready_ = false;
    bool broken_ = false;
    QueueError broken_reason_ = QueueError::NotReady;
    bool event_idx_ = false;
    bool indirect_ = false;
    QueueAddresses addrs_;
    // Validated views of the three areas (fixed while ready).
    std::span<uint8_t> desc_, avail_, used_;
    uint16_t last_avail_ = 0;   // next avail.ring entry the device reads
    uint16_t used_idx_ = 0;     // next used.ring entry the device writes
    uint16_t signalled_used_ = 0;  // used.idx when the driver was last interrupted
    bool notifications_enabled_ = true;
};

}  // namespace vireo
