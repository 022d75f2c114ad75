#include "vmm/devices/virtio/blk/blk.h"

#include "bpf/probe_abi.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/log.h"

namespace vireo {

using namespace virtio;

namespace {
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
const char* op_name(uint32_t type) {
    switch (type) {
        case blk::kTypeIn: return "read";
        case blk::kTypeOut: return "write";
        case blk::kTypeFlush: return "flush";
        default: return "request";
    }
}
}  // namespace

void VirtioBlk::AlignedFree::operator()(uint8_t* p) const { std::free(p); }

// One request slot. Its address is the io_uring user_data; slots live as
// long as the device, so a late completion never finds freed memory.
struct VirtioBlk::Request final : IoCompletion {
    VirtioBlk* dev = nullptr;
    unsigned queue = 0;
    uint16_t head = 0;
    uint64_t epoch = 0;
    BlkRequest req;
    std::vector<iovec> iov;   // guest buffers (host addresses)
    size_t iov_first = 0;     // first iovec not yet fully transferred
    uint64_t done = 0;        // bytes transferred so far
    std::unique_ptr<uint8_t, AlignedFree> bounce;
    iovec bounce_iov{};
    void io_complete(int32_t res) override { dev->complete(*this, res); }
};

VirtioBlk::VirtioBlk(std::string name, DiskImage image, IoThread& io, unsigned probe_index)
    : name_(std::move(name)),
      image_(std::move(image)),
      io_(io),
      probe_tag_(VIREO_BLK_USER_DATA(probe_index, 0)),
      poll_window_(image_.config().poll_us) {
    const auto& cfg = image_.config();
    unsigned slots = std::min<unsigned>(kMaxInflight, cfg.queues * cfg.queue_size);
    pool_.reserve(slots);
    for (unsigned i = 0; i < slots; ++i) {
        auto r = std::make_unique<Request>();
        r->dev = this;
        r->iov.reserve(cfg.queue_size);
        free_.push_back(r.get());
        pool_.push_back(std::move(r));
    }
    inflight_per_queue_.assign(cfg.queues, 0);
    completed_on_.assign(cfg.queues, 0);
    starved_.assign(cfg.queues, 0);
    poll_until_.assign(cfg.queues, {});
    polled_.assign(cfg.queues, 0);
    chain_.segments.reserve(cfg.queue_size);

    // Config space (§5.2.4), little-endian.
    uint64_t capacity = image_.sectors();
    std::memcpy(config_ + 0, &capacity, 8);
    uint32_t seg_max = cfg.queue_size - 2;  // header and status take two descriptors
    std::memcpy(config_ + 12, &seg_max, 4);
    uint32_t blk_size = blk::kSectorSize;
    std::memcpy(config_ + 20, &blk_size, 4);
    uint16_t nq = uint16_t(cfg.queues);
    std::memcpy(config_ + 34, &nq, 2);

    io_.add_batch_hook([this] { return batch_done(); });
}

VirtioBlk::~VirtioBlk() = default;

uint32_t VirtioBlk::device_id() const { return kDeviceBlock; }

uint64_t VirtioBlk::device_features() const {
    uint64_t f = bit(blk::kFSegMax) | bit(blk::kFBlkSize) | bit(blk::kFFlush);
    if (image_.read_only()) f |= bit(blk::kFRo);
    if (image_.config().queues > 1) f |= bit(blk::kFMq);
    return f;
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof config_ ? config_[offset + i] : 0;
}

void VirtioBlk::activate(VirtioTransport& transport) { transport_ = &transport; }

void VirtioBlk::reset() {
    ++epoch_;
    std::fill(inflight_per_queue_.begin(), inflight_per_queue_.end(), 0);
    std::fill(completed_on_.begin(), completed_on_.end(), 0);
    std::fill(starved_.begin(), starved_.end(), 0);
    std::fill(poll_until_.begin(), poll_until_.end(), std::chrono::steady_clock::time_point{});
    std::fill(polled_.begin(), polled_.end(), 0);
}

void VirtioBlk::note_limit(std::atomic<uint64_t>& counter, bool& logged, std::string_view what) {
    bump(counter);
    if (!logged) {
        logged = true;
        log_warn("virtio-{}: {} (counted in the stats; logged once)", name_, what);
    }
}

void VirtioBlk::process_queue(unsigned q) {
    if (q >= inflight_per_queue_.size()) return;
    // A stopped device or queue is not polled: its driver restarts it.
    polled_[q] = 0;
    if (!transport_ || !transport_->running()) return;
    VirtQueue& vq = transport_->queue(q);
    if (!vq.ready()) return;
    bool pushed = false, took_any = false;
    for (;;) {
        for (;;) {
            if (free_.empty()) {
                // Completions on any queue free slots; batch_done() comes back.
                starved_[q] = 1;
                if (vq.pending())
                    note_limit(counters_.inflight_limit_hits, limit_logged_,
                               fmt::format("{} requests in flight, the device's limit; more wait in the ring",
                                           pool_.size()));
                break;
            }
            auto popped = vq.pop(chain_);
            if (!popped) {
                // A malformed chain fails that request: its head goes back
                // with nothing written (there is no trustworthy status byte).
                auto head = transport_->refuse(q, fmt::format("request {}", q), popped.error(), counters_.bad_chains);
                if (!head) return;
                vq.push_used(*head, 0);
                pushed = true;
                continue;
            }
            if (!*popped) break;
            handle_chain(q);
            pushed = true;  // an immediate completion may have pushed
            took_any = true;
        }
        // Notifications (each costs the guest an exit, and the wake-up of
        // this thread may preempt its vCPU), in order of preference:
        //  - right after activity (a completion or a new request) the
        //    driver is likely to add more within microseconds: poll the
        //    ring every IoThread::kPollInterval for poll=US (poll_window_);
        //  - requests in flight (or no free slot): the next completion
        //    brings us back here (batch_done), no notification needed;
        //  - idle: ask for a notification, and look once more in case the
        //    driver added buffers before it could see that request.
        auto now = std::chrono::steady_clock::now();
        if (took_any) poll_until_[q] = now + poll_window_;
        if (now < poll_until_[q]) {
            polled_[q] = 1;
            vq.disable_notifications();
            break;
        }
        polled_[q] = 0;
        if (free_.empty() || inflight_per_queue_[q] > 0) {
            vq.disable_notifications();
            break;
        }
        if (!vq.enable_notifications()) break;
        vq.disable_notifications();
    }
    if (pushed) transport_->publish_used(q);
}

bool VirtioBlk::needs_bounce(const std::vector<iovec>& iov) const {
    if (!image_.direct()) return false;
    uint64_t align = std::max(image_.dio_mem_align(), image_.dio_offset_align());
    for (const auto& v : iov)
        if ((reinterpret_cast<uintptr_t>(v.iov_base) | v.iov_len) & (align - 1)) return true;
    return false;
}

void VirtioBlk::handle_chain(unsigned q) {
    bump(counters_.requests);
    Request& r = *free_.back();
    BlkLimits limits{image_.sectors(), image_.read_only()};
    auto parsed = parse_blk_request(chain_, limits, r.iov);
    VirtQueue& vq = transport_->queue(q);
    if (!parsed) {
        const auto& e = parsed.error();
        bump(counters_.bad_requests);
        if (e.error == BlkError::ReadOnly) bump(counters_.readonly_refused);
        // Refusing writes to a read-only disk is the device working as
        // configured: counted, not logged as a guest error.
        if (e.error != BlkError::ReadOnly)
            transport_->warn(fmt::format("queue {}: request at head {} failed: {}", q, chain_.head, to_string(e.error)));
        if (e.status) *e.status = e.status_value;
        vq.push_used(chain_.head, e.status ? 1 : 0);
        return;
    }
    r.req = *parsed;
    r.queue = q;
    r.head = chain_.head;
    r.epoch = epoch_;
    r.iov_first = 0;
    r.done = 0;
    r.bounce.reset();
    switch (r.req.type) {
        case blk::kTypeGetId: {
            bump(counters_.get_ids);
            uint8_t id[DiskImage::kSerialLen] = {};
            std::memcpy(id, image_.serial().data(), std::min(image_.serial().size(), sizeof id));
            uint64_t n = 0;
            for (const auto& v : r.iov) {
                size_t take = std::min<uint64_t>(v.iov_len, sizeof id - n);
                std::memcpy(v.iov_base, id + n, take);
                n += take;
                if (n == sizeof id) break;
            }
            *r.req.status = blk::kStatusOk;
            vq.push_used(r.head, uint32_t(n + 1));
            return;
        }
        case blk::kTypeFlush:
            bump(counters_.flushes);
            if (image_.read_only()) {  // nothing can be dirty
                *r.req.status = blk::kStatusOk;
                vq.push_used(r.head, 1);
                return;
            }
            break;
        case blk::kTypeIn:
        case blk::kTypeOut:
            bump(r.req.type == blk::kTypeIn ? counters_.reads : counters_.writes);
            if (r.req.data_len == 0) {
                *r.req.status = blk::kStatusOk;
                vq.push_used(r.head, 1);
                return;
            }
            if (needs_bounce(r.iov)) {
                if (r.req.data_len > kMaxBounce) {
                    note_limit(counters_.bounce_too_large, bounce_logged_,
                               fmt::format("an unaligned O_DIRECT request of {} bytes exceeds the {} MiB bounce "
                                           "buffer limit and fails with IOERR",
                                           r.req.data_len, kMaxBounce >> 20));
                    *r.req.status = blk::kStatusIoErr;
                    vq.push_used(r.head, 1);
                    return;
                }
                bump(counters_.bounced);
                size_t len = (r.req.data_len + 4095) & ~size_t(4095);
                r.bounce.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, len)));
                if (!r.bounce) {
                    *r.req.status = blk::kStatusIoErr;
                    vq.push_used(r.head, 1);
                    return;
                }
                if (r.req.type == blk::kTypeOut) {
                    uint64_t off = 0;
                    for (const auto& v : r.iov) {
                        std::memcpy(r.bounce.get() + off, v.iov_base, v.iov_len);
                        off += v.iov_len;
                    }
                }
            }
            break;
    }
    free_.pop_back();
    ++inflight_per_queue_[q];
    unsigned now = inflight_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (now > counters_.max_inflight_seen.load(std::memory_order_relaxed))
        counters_.max_inflight_seen.store(now, std::memory_order_relaxed);
    submit(r);
}

void VirtioBlk::submit(Request& r) {
    // One tagged SQE per request: what the blk probe counts (bpf/probe_abi.h).
    io_uring_sqe* s = io_.sqe(&r, probe_tag_);
    if (!s) {  // the I/O thread is stopping
        finish(r, blk::kStatusIoErr);
        return;
    }
    uint64_t offset = r.req.sector * blk::kSectorSize + r.done;
    if (r.req.type == blk::kTypeFlush) {
        io_uring_prep_fsync(s, image_.fd(), IORING_FSYNC_DATASYNC);
        return;
    }
    const iovec* v;
    unsigned n;
    if (r.bounce) {
        r.bounce_iov = {r.bounce.get() + r.done, size_t(r.req.data_len - r.done)};
        v = &r.bounce_iov;
        n = 1;
    } else {
        v = r.iov.data() + r.iov_first;
        n = unsigned(r.iov.size() - r.iov_first);
    }
    if (r.req.type == blk::kTypeIn)
        io_uring_prep_readv(s, image_.fd(), v, n, offset);
    else
        io_uring_prep_writev(s, image_.fd(), v, n, offset);
}

void VirtioBlk::complete(Request& r, int32_t res) {
    auto lock = transport_->lock();
    if (res == -EINTR || res == -EAGAIN) {
        submit(r);
        return;
    }
    if (res < 0) {
        bump(counters_.io_errors);
        transport_->warn(fmt::format("host {} error at sector {} ({} bytes): {}", op_name(r.req.type), r.req.sector,
                                     r.req.data_len, std::strerror(-res)));
        finish(r, blk::kStatusIoErr);
        return;
    }
    if (r.req.type == blk::kTypeFlush) {
        finish(r, blk::kStatusOk);
        return;
    }
    uint64_t got = uint64_t(res);
    if (got == 0 && r.done < r.req.data_len) {
        // End of file inside the capacity: the image shrank under us.
        bump(counters_.io_errors);
        transport_->warn(fmt::format("host {} at sector {} hit the end of {} (did the image shrink?)",
                                     op_name(r.req.type), r.req.sector, image_.path()));
        finish(r, blk::kStatusIoErr);
        return;
    }
    r.done += got;
    if (r.done < r.req.data_len) {
        bump(counters_.short_transfers);
        if (!r.bounce) {
            // Skip what was transferred in the guest iovecs.
            while (got > 0 && r.iov_first < r.iov.size()) {
                iovec& v = r.iov[r.iov_first];
                uint64_t take = std::min<uint64_t>(got, v.iov_len);
                v.iov_base = static_cast<uint8_t*>(v.iov_base) + take;
                v.iov_len -= take;
                got -= take;
                if (v.iov_len == 0) ++r.iov_first;
            }
        }
        submit(r);
        return;
    }
    if (r.bounce && r.req.type == blk::kTypeIn) {
        uint64_t off = 0;
        for (const auto& v : r.iov) {
            std::memcpy(v.iov_base, r.bounce.get() + off, v.iov_len);
            off += v.iov_len;
        }
    }
    bump(r.req.type == blk::kTypeIn ? counters_.bytes_read : counters_.bytes_written, r.req.data_len);
    finish(r, blk::kStatusOk);
}

// Called with the device lock held.
void VirtioBlk::finish(Request& r, uint8_t status) {
    r.bounce.reset();
    inflight_.fetch_sub(1, std::memory_order_acq_rel);
    free_.push_back(&r);
    if (r.epoch != epoch_ || !transport_) return;  // the device was reset meanwhile
    if (inflight_per_queue_[r.queue]) --inflight_per_queue_[r.queue];
    *r.req.status = status;
    uint32_t used = status == blk::kStatusOk && r.req.type == blk::kTypeIn ? uint32_t(r.req.data_len + 1) : 1;
    transport_->queue(r.queue).push_used(r.head, used);
    completed_on_[r.queue] = 1;
    completions_pending_ = true;
}

// After each batch of completions, and every poll interval while a queue is
// polled: publish each queue's used ring once (one interrupt at most), then
// take the buffers the driver added meanwhile. Returns whether to be called
// again after the poll interval (a queue is polled).
bool VirtioBlk::batch_done() {
    if (!transport_) return false;
    bool polled = false;
    for (auto p : polled_) polled |= p;
    if (!completions_pending_ && !polled) return false;
    auto lock = transport_->lock();
    completions_pending_ = false;
    auto now = std::chrono::steady_clock::now();
    for (unsigned q = 0; q < completed_on_.size(); ++q) {
        if (completed_on_[q]) {
            transport_->publish_used(q);
            poll_until_[q] = now + poll_window_;  // the driver reaps and refills now
        }
        // Queues with completions, being polled, or that found no free slot.
        if (completed_on_[q] || polled_[q] || (starved_[q] && !free_.empty())) {
            completed_on_[q] = 0;
            starved_[q] = 0;
            process_queue(q);
        }
    }
    // Polled queues (notifications off) must be looked at again, or their
    // next buffer would wait forever.
    bool again = false;
    for (auto p : polled_) again |= p;
    return again;
}

}  // namespace vireo
