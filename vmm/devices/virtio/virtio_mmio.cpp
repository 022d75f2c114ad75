#include "vmm/devices/virtio/virtio_mmio.h"

#include <sys/eventfd.h>

#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/log.h"

namespace vireo {

using namespace virtio;

namespace {
inline void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

VirtioMmio::VirtioMmio(const GuestMemory& mem, std::unique_ptr<VirtioDevice> device, InterruptLine& irq,
                       Options options)
    : mem_(mem), device_(std::move(device)), irq_(irq), options_(options), name_(fmt::format("virtio-{}", device_->name())) {
    unsigned n = device_->max_queues();
    queues_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        queues_.emplace_back(mem_, device_->queue_max_size(i));
        if (options_.notify_eventfds) queues_.back().notify.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
    offered_ = device_->device_features() | bit(feature::Version1);
    if (options_.offer_event_idx) offered_ |= bit(feature::EventIdx);
    if (options_.offer_indirect) offered_ |= bit(feature::IndirectDesc);
}

int VirtioMmio::notify_fd(unsigned queue) const {
    return queue < queues_.size() && queues_[queue].notify ? queues_[queue].notify.get() : -1;
}

uint32_t VirtioMmio::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

bool VirtioMmio::running() const {
    return (status_ & status::DriverOk) && !(status_ & (status::DeviceNeedsReset | status::Failed)) && !quiescing_;
}

unsigned VirtioMmio::live_queues() const {
    return std::min<unsigned>(device_->queue_count(driver_features_), unsigned(queues_.size()));
}

void VirtioMmio::bad_access(std::string_view what) {
    bump(counters_.bad_accesses);
    log_.warn(name_, what);
}

// ------------------------------------------------------------ register access (vCPU threads)

void VirtioMmio::read(uint64_t offset, std::span<uint8_t> data) {
    if (offset >= reg::Config) {
        std::lock_guard lock(mutex_);
        device_->read_config(offset - reg::Config, data);
        return;
    }
    // §4.2.2.2: registers are 32 bits wide and read with 32-bit accesses.
    if (data.size() != 4 || offset % 4) {
        std::memset(data.data(), 0, data.size());
        bad_access(fmt::format("{}-byte read at register offset {:#x} (registers are 32-bit)", data.size(), offset));
        return;
    }
    store_le(data, read_register(offset));
}

void VirtioMmio::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= reg::Config) {
        std::lock_guard lock(mutex_);
        device_->write_config(offset - reg::Config, data);
        return;
    }
    if (data.size() != 4 || offset % 4) {
        bad_access(fmt::format("{}-byte write at register offset {:#x} (registers are 32-bit)", data.size(), offset));
        return;
    }
    write_register(offset, uint32_t(load_le(data)));
}

uint32_t VirtioMmio::read_register(uint64_t offset) {
    switch (offset) {
        case reg::MagicValue: return kMagic;
        case reg::Version: return kMmioVersion;
        case reg::DeviceId: return device_->device_id();
        case reg::VendorId: return kVendorId;
        case reg::InterruptStatus: return isr_.load(std::memory_order_acquire);
        case reg::ConfigGeneration: return config_generation_.load(std::memory_order_acquire);
        // No shared memory regions: a length of -1 says so (§4.2.2).
        case reg::ShmLenLow:
        case reg::ShmLenHigh: return 0xffffffffu;
        default: break;
    }
    std::lock_guard lock(mutex_);
    switch (offset) {
        case reg::DeviceFeatures:
            return device_features_sel_ < 2 ? uint32_t(offered_ >> (32 * device_features_sel_)) : 0;
        case reg::QueueNumMax:
            return queue_sel_ < live_queues() ? queues_[queue_sel_].vq.max_size() : 0;
        case reg::QueueReady:
            return queue_sel_ < queues_.size() && queues_[queue_sel_].vq.ready() ? 1 : 0;
        case reg::Status: return status_;
        default: return 0;  // write-only and reserved registers read as 0
    }
}

void VirtioMmio::write_register(uint64_t offset, uint32_t v) {
    if (offset == reg::QueueNotify) {
        // Only reaches here when no ioeventfd took the write.
        bump(counters_.notify_exits);
        if (v >= queues_.size()) {
            bad_access(fmt::format("notify of queue {} (the device has {})", v, queues_.size()));
            return;
        }
        if (queues_[v].notify)
            (void)::eventfd_write(queues_[v].notify.get(), 1);
        else
            handle_notify(v);
        return;
    }
    if (offset == reg::InterruptAck) {
        isr_.fetch_and(~v, std::memory_order_acq_rel);
        return;
    }
    std::unique_lock lock(mutex_);
    Queue* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
    auto queue_field = [&](const char* what) -> Queue* {
        if (!q) {
            bad_access(fmt::format("{} of queue {}, which does not exist", what, queue_sel_));
            return nullptr;
        }
        // §4.2.2.3: the driver must not change a queue while it is ready.
        if (q->vq.ready()) {
            bad_access(fmt::format("{} of queue {} while it is ready", what, queue_sel_));
            return nullptr;
        }
        return q;
    };
    auto set_low = [](uint64_t& r, uint32_t x) { r = (r & ~0xffffffffull) | x; };
    auto set_high = [](uint64_t& r, uint32_t x) { r = (r & 0xffffffffull) | (uint64_t(x) << 32); };
    switch (offset) {
        case reg::DeviceFeaturesSel: device_features_sel_ = v; return;
        case reg::DriverFeaturesSel: driver_features_sel_ = v; return;
        case reg::DriverFeatures:
            if (status_ & status::FeaturesOk) {
                bad_access("driver features written after FEATURES_OK");
                return;
            }
            if (driver_features_sel_ < 2) {
                uint64_t mask = 0xffffffffull << (32 * driver_features_sel_);
                driver_features_ = (driver_features_ & ~mask) | (uint64_t(v) << (32 * driver_features_sel_));
            }
            return;
        case reg::QueueSel: queue_sel_ = v; return;
        case reg::QueueNum:
            if (auto* qq = queue_field("QueueNum")) qq->num = v;
            return;
        case reg::QueueDescLow:
            if (auto* qq = queue_field("QueueDesc")) set_low(qq->addrs.desc, v);
            return;
        case reg::QueueDescHigh:
            if (auto* qq = queue_field("QueueDesc")) set_high(qq->addrs.desc, v);
            return;
        case reg::QueueDriverLow:
            if (auto* qq = queue_field("QueueDriver")) set_low(qq->addrs.driver, v);
            return;
        case reg::QueueDriverHigh:
            if (auto* qq = queue_field("QueueDriver")) set_high(qq->addrs.driver, v);
            return;
        case reg::QueueDeviceLow:
            if (auto* qq = queue_field("QueueDevice")) set_low(qq->addrs.device, v);
            return;
        case reg::QueueDeviceHigh:
            if (auto* qq = queue_field("QueueDevice")) set_high(qq->addrs.device, v);
            return;
        case reg::QueueReady:
            if (!q || queue_sel_ >= live_queues()) {
                bad_access(fmt::format("QueueReady of queue {}, which does not exist", queue_sel_));
                return;
            }
            if (v == 0) {
                q->vq.disable();
                return;
            }
            if (q->vq.ready()) return;
            if (!(status_ & status::FeaturesOk)) {
                bad_access(fmt::format("QueueReady of queue {} before FEATURES_OK", queue_sel_));
                return;
            }
            if (q->num > 0xffff) {
                bump(counters_.refused_queues);
                log_.warn(name_, fmt::format("queue {}: size {} is too large", queue_sel_, q->num));
                return;
            }
            if (auto r = q->vq.activate(q->addrs, uint16_t(q->num), driver_features_ & bit(feature::EventIdx),
                                        driver_features_ & bit(feature::IndirectDesc));
                !r) {
                bump(counters_.refused_queues);
                log_.warn(name_, fmt::format("queue {} refused: {}", queue_sel_, r.error()));
            }
            return;
        case reg::Status: write_status(v); reset_locked(lock); return;
        default:
            bad_access(fmt::format("write of {:#x} to read-only or reserved register {:#x}", v, offset));
            return;
    }
}

// Status writes (§2.1, §3.1.1). Called with the lock held; a write of 0 is
// finished by reset_locked(), which may wait for in-flight I/O.
void VirtioMmio::write_status(uint32_t v) {
    if (v == 0) {
        quiescing_ = true;
        return;
    }
    // NEEDS_RESET is the device's bit: keep it whatever the driver writes.
    uint32_t device_bits = status_ & status::DeviceNeedsReset;
    v &= ~status::DeviceNeedsReset;
    if ((status_ & ~status::DeviceNeedsReset) & ~v) {
        bad_access(fmt::format("status write {:#x} clears bits of {:#x}", v, status_));
        return;
    }
    uint32_t added = v & ~status_;
    if (added & status::FeaturesOk) {
        uint64_t unknown = driver_features_ & ~offered_;
        const char* why = nullptr;
        if (!(driver_features_ & bit(feature::Version1))) why = "VERSION_1 not accepted (legacy drivers are not supported)";
        else if (unknown) why = "driver accepted features the device did not offer";
        else if (!device_->accept_features(driver_features_)) why = "the device refused this combination";
        if (why) {
            bump(counters_.refused_features);
            log_.warn(name_, fmt::format("FEATURES_OK refused: {} (driver features {:#x}, offered {:#x})", why,
                                         driver_features_, offered_));
            v &= ~status::FeaturesOk;
            added &= ~status::FeaturesOk;
        }
    }
    if (added & status::DriverOk) {
        if (!(v & status::FeaturesOk)) {
            bad_access("DRIVER_OK without FEATURES_OK");
            v &= ~status::DriverOk;
            added &= ~status::DriverOk;
        }
    }
    status_ = v | device_bits;
    if (added & status::DriverOk) {
        device_->activate(*this);
        kick_all_queues();
    }
}

// Buffers made available before DRIVER_OK (allowed) were never notified
// again: look at every ready queue once.
void VirtioMmio::kick_all_queues() {
    for (unsigned i = 0; i < live_queues(); ++i) {
        if (!queues_[i].vq.ready()) continue;
        if (queues_[i].notify)
            (void)::eventfd_write(queues_[i].notify.get(), 1);
        else
            device_->process_queue(i);
    }
}

void VirtioMmio::reset_locked(std::unique_lock<std::mutex>& lock) {
    if (!quiescing_) return;
    // The driver may reuse every buffer once the reset is done, so requests
    // the host still works on must finish first; this vCPU waits (as with
    // QEMU's drain on reset). A stopping VM does not wait.
    auto warned = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (device_->inflight() > 0) {
        if (options_.stop && options_.stop->stop_requested()) break;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        lock.lock();
        if (std::chrono::steady_clock::now() > warned) {
            log_.warn(name_, fmt::format("reset still waiting for {} in-flight requests", device_->inflight()));
            warned += std::chrono::seconds(5);
        }
    }
    device_->reset();
    for (auto& q : queues_) {
        q.vq.reset();
        q.num = 0;
        q.addrs = {};
    }
    driver_features_ = 0;
    device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
    status_ = 0;
    isr_.store(0, std::memory_order_release);
    quiescing_ = false;
    bump(counters_.resets);
}

// ------------------------------------------------------------ device side

void VirtioMmio::handle_notify(unsigned queue) {
    auto lock = this->lock();
    bump(counters_.notifies);
    if (!running() || queue >= live_queues() || !queues_[queue].vq.ready()) return;
    device_->process_queue(queue);
}

void VirtioMmio::publish_used(unsigned queue) {
    if (queue >= queues_.size()) return;
    if (queues_[queue].vq.publish_used()) {
        isr_.fetch_or(kIsrUsedBuffer, std::memory_order_acq_rel);
        bump(counters_.interrupts);
        irq_.pulse();
    }
}

void VirtioMmio::config_changed() {
    config_generation_.fetch_add(1, std::memory_order_acq_rel);
    // Before DRIVER_OK the driver reads the config anyway (§4.2.3.2 only
    // asks for the interrupt once it runs).
    if (!(status_ & status::DriverOk)) return;
    isr_.fetch_or(kIsrConfigChange, std::memory_order_acq_rel);
    bump(counters_.config_interrupts);
    irq_.pulse();
}

void VirtioMmio::set_needs_reset(std::string_view why) {
    if (status_ & status::DeviceNeedsReset) return;
    bump(counters_.needs_reset);
    log_.warn(name_, fmt::format("device needs reset: {}", why));
    status_ |= status::DeviceNeedsReset;
    if (status_ & status::DriverOk) {
        isr_.fetch_or(kIsrConfigChange, std::memory_order_acq_rel);
        bump(counters_.config_interrupts);
        irq_.pulse();
    }
}

}  // namespace vireo
