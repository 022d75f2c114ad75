// virtio-blk (virtio 1.2 §5.2) on io_uring: IN, OUT, FLUSH (fdatasync) and
// GET_ID on a raw image, many requests in flight, one or more queues, all
// served by the guest's I/O thread.
//
// Flow: a notify (ioeventfd) wakes the I/O thread, which pops every
// available chain, parses it (blk_request.h) and submits a readv/writev/
// fsync whose user_data is the request's slot. Completions write the status
// byte and the used ring; after each batch of completions the used index is
// published once per queue, one interrupt is raised if the driver asked for
// it, and the queue is looked at again. While requests are in flight the
// guest's notifications stay off (the next completion looks at the ring
// anyway); only an idle queue asks for one (EVENT_IDX avail_event /
// NO_NOTIFY). With `poll=US` the I/O thread also polls the ring every
// IoThread::kPollInterval (20 us) for US after any activity, so a guest
// that refills as requests complete never needs a notification. Why: on
// this PVM host a notify is an exit of 10-20 us when the host is quiet, but
// the I/O thread it wakes tends to preempt the notifying vCPU on its CPU
// (150-2000 us seen under load). Polling wins on a quiet host and loses on
// a busy one (its wake-ups preempt the vCPU in turn), hence an option.
//
// Limits, each counted and reported once in the log when hit: at most
// kMaxInflight requests in flight per device (further chains wait in the
// ring); an unaligned O_DIRECT request is bounced through an aligned buffer
// of at most kMaxBounce bytes (larger ones fail with IOERR).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vmm/devices/virtio/blk/blk_request.h"
#include "vmm/devices/virtio/blk/disk_image.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/io/io_thread.h"

namespace vireo {

struct VirtioBlkCounters {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> reads{0}, writes{0}, flushes{0}, get_ids{0};
    std::atomic<uint64_t> bytes_read{0}, bytes_written{0};
    std::atomic<uint64_t> io_errors{0};        // the host failed a read/write/fsync
    std::atomic<uint64_t> bad_requests{0};     // parse errors (IOERR/UNSUPP to the guest)
    std::atomic<uint64_t> bad_chains{0};       // descriptor chains the walker refused
    std::atomic<uint64_t> readonly_refused{0};
    std::atomic<uint64_t> inflight_limit_hits{0};
    std::atomic<uint64_t> bounced{0};          // O_DIRECT requests copied through an aligned buffer
    std::atomic<uint64_t> bounce_too_large{0};
    std::atomic<uint64_t> short_transfers{0};  // partial reads/writes resubmitted
    std::atomic<uint64_t> max_inflight_seen{0};
};

class VirtioBlk final : public VirtioDevice {
public:
    static constexpr unsigned kMaxInflight = 128;
    static constexpr uint64_t kMaxBounce = 4ull << 20;

    // `io` runs every request; it must outlive the device's last request
    // (the machine stops it before destroying devices).
    // `probe_index`: the disk's number for the eBPF blk probe, which finds
    // this device's requests by a tag in their io_uring user_data.
    VirtioBlk(std::string name, DiskImage image, IoThread& io, unsigned probe_index = 0);
    ~VirtioBlk() override;

    std::string_view name() const override { return name_; }
    uint32_t device_id() const override;
    uint64_t device_features() const override;
    unsigned max_queues() const override { return image_.config().queues; }
    uint16_t queue_max_size(unsigned) const override { return uint16_t(image_.config().queue_size); }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void activate(VirtioTransport& transport) override;
    void process_queue(unsigned queue) override;
    unsigned inflight() const override { return inflight_.load(std::memory_order_acquire); }
    void reset() override;

    const DiskImage& image() const { return image_; }
    const VirtioBlkCounters& counters() const { return counters_; }

private:
    struct Request;
    struct AlignedFree {
        void operator()(uint8_t* p) const;
    };

    void handle_chain(unsigned queue);
    void submit(Request& r);
    void finish(Request& r, uint8_t status);
    void complete(Request& r, int32_t res);
    bool batch_done();
    bool needs_bounce(const std::vector<iovec>& iov) const;
    void note_limit(std::atomic<uint64_t>& counter, bool& logged, std::string_view what);

    std::string name_;
    DiskImage image_;
    IoThread& io_;
    const uint64_t probe_tag_;
    VirtioTransport* transport_ = nullptr;
    // How long after activity (a completion or a new request) a queue is
    // polled every IoThread::kPollInterval instead of waiting for a
    // notification (DiskConfig::poll_us).
    std::chrono::microseconds poll_window_;
    uint8_t config_[64] = {};

    std::vector<std::unique_ptr<Request>> pool_;
    std::vector<Request*> free_;
    std::vector<unsigned> inflight_per_queue_;
    std::vector<uint8_t> completed_on_;  // queues with completions since the last batch_done
    std::vector<uint8_t> starved_;       // queues that found every request slot taken
    // Until when a queue is polled instead of notified (busy, or just idle).
    std::vector<std::chrono::steady_clock::time_point> poll_until_;
    std::vector<uint8_t> polled_;  // notifications off: batch_done() must look again
    bool completions_pending_ = false;
    std::atomic<unsigned> inflight_{0};
    uint64_t epoch_ = 0;  // bumped by reset(): completions of an older epoch are dropped
    DescChain chain_;     // scratch for the walker
    bool limit_logged_ = false, bounce_logged_ = false;
    VirtioBlkCounters counters_;
};

}  // namespace vireo
