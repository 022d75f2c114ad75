// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): one 4 KiB
// register window per device, feature negotiation, the device status state
// machine, queue set-up and reset, the interrupt status, config space at
// 0x100 (forwarded to the device type).
//
// Notifications: each queue has an eventfd. The machine binds it to KVM
// (KVM_IOEVENTFD on QueueNotify, datamatch = queue index), so a guest's
// notify wakes the I/O thread without a trip through the vCPU thread; the
// I/O thread then calls handle_notify(). If a notify write does reach
// write() (no ioeventfd, or a value no ioeventfd matches), it is forwarded to
// the same eventfd: the fallback costs a userspace exit and nothing else.
// Without eventfds (Options::notify_eventfds = false, unit tests) a notify is
// processed inline.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/devices/device.h"
#include "vmm/devices/virtio/rate_limited_log.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

struct VirtioMmioCounters {
    std::atomic<uint64_t> notifies{0};        // queue notifications handled
    std::atomic<uint64_t> notify_exits{0};    // ... of which reached a vCPU thread (no ioeventfd)
    std::atomic<uint64_t> interrupts{0};      // used-buffer interrupts raised
    std::atomic<uint64_t> config_interrupts{0};
    std::atomic<uint64_t> resets{0};
    std::atomic<uint64_t> needs_reset{0};     // DEVICE_NEEDS_RESET set
    std::atomic<uint64_t> bad_accesses{0};    // bad register width/offset, forbidden writes
    std::atomic<uint64_t> refused_features{0};
    std::atomic<uint64_t> refused_queues{0};  // QueueReady with a bad configuration
};

class VirtioMmio final : public Device, public VirtioTransport {
public:
    struct Options {
        bool notify_eventfds = true;
        // Offered on top of the device's bits; tests turn them off.
        bool offer_event_idx = true;
        bool offer_indirect = true;
        const StopSink* stop = nullptr;  // a reset waiting for I/O gives up on stop
    };

    VirtioMmio(const GuestMemory& mem, std::unique_ptr<VirtioDevice> device, InterruptLine& irq, Options options);
    VirtioMmio(const GuestMemory& mem, std::unique_ptr<VirtioDevice> device, InterruptLine& irq)
        : VirtioMmio(mem, std::move(device), irq, Options{}) {}

    // Device (vCPU threads)
    std::string_view name() const override { return name_; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // VirtioTransport (the device, under lock())
    VirtQueue& queue(unsigned index) override { return queues_[index].vq; }
    uint64_t negotiated_features() const override { return driver_features_; }
    bool running() const override;
    void publish_used(unsigned queue) override;
    void config_changed() override;
    void set_needs_reset(std::string_view why) override;
    std::unique_lock<std::mutex> lock() override { return std::unique_lock(mutex_); }
    void warn(std::string_view what) override { log_.warn(name_, what); }

    // The I/O thread: `queue` was notified (its eventfd fired).
    void handle_notify(unsigned queue);
    // The eventfd of a queue's notifications, -1 without eventfds.
    int notify_fd(unsigned queue) const;
    unsigned max_queues() const { return unsigned(queues_.size()); }
    uint64_t offered_features() const { return offered_; }
    uint32_t status() const;

    VirtioDevice& device() { return *device_; }
    const VirtioMmioCounters& counters() const { return counters_; }
    uint64_t warnings() const { return log_.events(); }

private:
    struct Queue {
        explicit Queue(const GuestMemory& mem, uint16_t max) : vq(mem, max) {}
        VirtQueue vq;
        uint32_t num = 0;
        QueueAddresses addrs;
        UniqueFd notify;
    };
    uint32_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint32_t value);
    void write_status(uint32_t value);
    void reset_locked(std::unique_lock<std::mutex>& lock);
    void kick_all_queues();
    void bad_access(std::string_view what);
    unsigned live_queues() const;

    const GuestMemory& mem_;
    std::unique_ptr<VirtioDevice> device_;
    InterruptLine& irq_;
    Options options_;
    std::string name_;

    mutable std::mutex mutex_;
    std::vector<Queue> queues_;
    uint64_t offered_ = 0;
    uint64_t driver_features_ = 0;
    uint32_t device_features_sel_ = 0;
    uint32_t driver_features_sel_ = 0;
    uint32_t queue_sel_ = 0;
    uint32_t status_ = 0;
    bool quiescing_ = false;  // a reset waits for in-flight requests
    std::atomic<uint32_t> isr_{0};
    std::atomic<uint32_t> config_generation_{0};
    VirtioMmioCounters counters_;
    RateLimitedLog log_;
};

}  // namespace vireo
