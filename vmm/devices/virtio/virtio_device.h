// What a virtio device type (blk, balloon) implements, and what the
// transport offers it. The transport (VirtioMmio) owns the registers, the
// status state machine, feature negotiation and the queues; the device owns
// its config space and what the buffers mean.
//
// Threads: register accesses come from vCPU threads, queue work from the
// guest's I/O thread. The transport serialises both with one mutex per
// device: every VirtioDevice method except the const descriptive ones is
// called with that mutex held (VirtioTransport::lock() gives it to work the
// device starts by itself, such as an I/O completion or a timer).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include <fmt/format.h>

#include "vmm/devices/virtio/virtqueue.h"

namespace vireo {

class VirtioTransport {
public:
    virtual ~VirtioTransport() = default;
    virtual VirtQueue& queue(unsigned index) = 0;
    virtual uint64_t negotiated_features() const = 0;
    // The driver accepted the device (DRIVER_OK) and it is not broken.
    virtual bool running() const = 0;
    // Used buffers were published on `queue`: interrupt the driver if
    // VirtQueue::publish_used() said it wants one.
    virtual void publish_used(unsigned queue) = 0;
    // The device changed its config space (generation++, config interrupt).
    virtual void config_changed() = 0;
    // The device cannot go on until reset (§2.1.2): DEVICE_NEEDS_RESET and
    // a config interrupt; its queues stop.
    virtual void set_needs_reset(std::string_view why) = 0;
    virtual std::unique_lock<std::mutex> lock() = 0;
    // A counted, rate-limited warning line "virtio-NAME: ...".
    virtual void warn(std::string_view what) = 0;

    // What every device does when VirtQueue::pop() fails. A broken ring
    // (is_ring_error) makes the whole queue untrustworthy: the device needs
    // a reset, asked for here, and the caller stops (nullopt). A refused
    // chain is only that request's fault: counted in `refused`, warned
    // about, and its head returned for the caller to give back unwritten.
    std::optional<uint16_t> refuse(unsigned q, std::string_view queue_name, const PopError& e,
                                   std::atomic<uint64_t>& refused) {
        if (is_ring_error(e.error)) {
            set_needs_reset(fmt::format("queue {}: {}", q, to_string(e.error)));
            return std::nullopt;
        }
        refused.fetch_add(1, std::memory_order_relaxed);
        warn(fmt::format("{} queue: chain at head {} refused: {}", queue_name, e.head, to_string(e.error)));
        return e.head;
    }
};

class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;
    virtual std::string_view name() const = 0;  // "blk0", "balloon"
    virtual uint32_t device_id() const = 0;
    // Device-type feature bits (the transport adds VERSION_1, EVENT_IDX and
    // INDIRECT_DESC itself).
    virtual uint64_t device_features() const = 0;
    // Queues the device can have at most, and each one's maximum size.
    virtual unsigned max_queues() const = 0;
    virtual uint16_t queue_max_size(unsigned index) const = 0;
    // Queues that exist with these negotiated features (balloon: the stats
    // and reporting queues exist only if negotiated). Default: all.
    virtual unsigned queue_count(uint64_t features) const {
        (void)features;
        return max_queues();
    }
    // FEATURES_OK: may refuse a combination the device cannot work with.
    virtual bool accept_features(uint64_t features) {
        (void)features;
        return true;
    }

    virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) {
        (void)offset, (void)data;
    }

    // DRIVER_OK: the negotiated features and ready queues are fixed.
    virtual void activate(VirtioTransport& transport) = 0;
    // The driver notified `queue` (or the device asked to look again).
    virtual void process_queue(unsigned queue) = 0;
    // Requests the device has handed to the host and not completed: a reset
    // waits for them, so no completion writes into memory the driver
    // already reused.
    virtual unsigned inflight() const { return 0; }
    // Device reset: forget all per-driver state.
    virtual void reset() = 0;
};

}  // namespace vireo
