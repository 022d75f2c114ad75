#include "vmm/devices/virtio/virtio_devices.h"

#include <fmt/format.h>

#include "vireo/layout.h"
#include "vmm/devices/kvm_irq_line.h"
#include "vmm/devices/virtio/balloon/balloon_target_sequence.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/log.h"

namespace vireo {

std::expected<std::unique_ptr<VirtioDevices>, std::string> VirtioDevices::prepare(const std::vector<DiskConfig>& disks,
                                                                               const std::optional<BalloonConfig>& balloon) {
    std::unique_ptr<VirtioDevices> v(new VirtioDevices());
    size_t count = disks.size() + (balloon ? 1 : 0);
    if (count > VIREO_VIRTIO_MAX_DEVICES)
        return std::unexpected(fmt::format("{} virtio devices ({} --disk{}); vireo has room for {}", count,
                                           disks.size(), balloon ? " and --balloon" : "",
                                           VIREO_VIRTIO_MAX_DEVICES));
    uint32_t gsi = VIREO_VIRTIO_IRQ_BASE;
    for (size_t i = 0; i < count; ++i) {
        while (gsi < kIoApicPins && gsi_reserved_by_platform(gsi)) ++gsi;
        if (gsi >= kIoApicPins) {
            size_t fit = i;
            return std::unexpected(fmt::format("{} virtio devices ({} --disk{}), but only {} interrupt lines are free for them",
                                               count, disks.size(), balloon ? " and --balloon" : "", fit));
        }
        Slot s;
        s.desc = {VIREO_VIRTIO_MMIO_BASE + i * VIREO_VIRTIO_MMIO_SIZE, VIREO_VIRTIO_MMIO_SIZE, gsi++};
        if (i < disks.size()) {
            auto disk = DiskImage::open(disks[i]);
            if (!disk) return std::unexpected(disk.error());
            s.disk = std::make_unique<DiskImage>(std::move(*disk));
        } else {
            s.balloon = true;
        }
        v->slots_.push_back(std::move(s));
    }
    if (balloon) v->balloon_config_ = *balloon;
    return v;
}

VirtioDevices::~VirtioDevices() { stop(); }

std::vector<VirtioMmioDesc> VirtioDevices::descriptors() const {
    std::vector<VirtioMmioDesc> out;
    for (const auto& s : slots_) out.push_back(s.desc);
    return out;
}

std::string VirtioDevices::cmdline_devices() const {
    std::string out;
    for (const auto& s : slots_)
        out += fmt::format("{}virtio_mmio.device={}K@{:#x}:{}", out.empty() ? "" : " ", s.desc.size >> 10, s.desc.base,
                           s.desc.gsi);
    return out;
}

std::expected<void, std::string> VirtioDevices::create(const Vm& vm, const GuestMemory& mem, IoBus& mmio,
                                                       const StopSink& stop, const std::string& guest_name) {
    if (slots_.empty()) return {};
    auto io = IoThread::create(fmt::format("io/g{}", guest_name));
    if (!io) return std::unexpected("I/O thread: " + io.error());
    io_ = std::move(*io);

    unsigned disk_no = 0;
    for (auto& s : slots_) {
        // Interrupts through irqfd (injected from the I/O thread); if KVM
        // refuses, KVM_IRQ_LINE from the same thread does the same job.
        std::unique_ptr<InterruptLine> line;
        if (auto l = IrqFdLine::create(s.desc.gsi); l) {
            if (auto r = vm.add_irqfd(s.desc.gsi, l->fd()); r)
                line = std::make_unique<IrqFdLine>(std::move(*l));
            else
                log_warn("virtio: {} for GSI {}; interrupts use KVM_IRQ_LINE instead", r.error(), s.desc.gsi);
        }
        if (!line) {
            ++irqfd_failures_;
            line = std::make_unique<KvmIrqLine>(vm, s.desc.gsi);
        }
        std::unique_ptr<VirtioDevice> dev;
        if (s.disk) {
            auto blk = std::make_unique<VirtioBlk>(fmt::format("blk{}", disk_no), std::move(*s.disk), *io_, disk_no);
            ++disk_no;
            s.disk.reset();
            blks_.push_back(blk.get());
            dev = std::move(blk);
        } else {
            auto b = std::make_unique<VirtioBalloon>(mem, balloon_config_, *io_);
            balloon_ = b.get();
            dev = std::move(b);
        }
        VirtioMmio::Options opts;
        opts.stop = &stop;
        auto t = std::make_shared<VirtioMmio>(mem, std::move(dev), *line, opts);
        lines_.push_back(std::move(line));
        if (balloon_ && &t->device() == balloon_) balloon_->attach(*t);
        // Notifications: one ioeventfd per queue on QueueNotify, matched on
        // the queue index, read by the I/O thread.
        for (unsigned q = 0; q < t->max_queues(); ++q) {
            int fd = t->notify_fd(q);
            VirtioMmio* tp = t.get();
            io_->watch(fd, [tp, q] { tp->handle_notify(q); });
            if (auto r = vm.add_ioeventfd(s.desc.base + virtio::reg::QueueNotify, 4, fd, false, q); !r) {
                if (ioeventfd_failures_++ == 0)
                    log_warn("virtio: {}; queue notifications go through the vCPU thread instead", r.error());
            }
        }
        if (!mmio.add(s.desc.base, s.desc.size, t))
            return std::unexpected(fmt::format("mmio bus: virtio window {:#x} overlaps another device", s.desc.base));
        transports_.push_back(std::move(t));
    }
    // Test-only balloon targets (BalloonTargetAt): timers on the I/O thread.
    if (balloon_) {
        for (const auto& t : balloon_config_.target_at) {
            if (t.after_reached) continue;  // the sequence below
            VirtioBalloon* b = balloon_;
            uint64_t mib = t.mib;
            auto when = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(t.seconds));
            auto r = io_->add_timer(when, std::chrono::nanoseconds(0), [b, mib] {
                if (auto ok = b->set_target_bytes(mib << 20); !ok) log_warn("virtio-balloon: target-at: {}", ok.error());
            });
            if (!r) return std::unexpected("balloon target-at timer: " + r.error());
        }
        // target-after entries: polled. The guest reaches a target by a
        // config write on a vCPU thread, and neither that thread nor the I/O
        // thread may create a timerfd under its seccomp filter.
        auto seq = std::make_shared<BalloonTargetSequence>(balloon_config_.target_at);
        if (!seq->done()) {
            VirtioBalloon* b = balloon_;
            auto r = io_->add_timer(std::chrono::milliseconds(100), std::chrono::milliseconds(100), [b, seq] {
                auto mib = seq->due(std::chrono::steady_clock::now(), b->counters().target_changes.load(),
                                    b->target_reached_at());
                if (!mib) return;
                if (auto ok = b->set_target_bytes(*mib << 20); !ok) log_warn("virtio-balloon: target-after: {}", ok.error());
            });
            if (!r) return std::unexpected("balloon target-after timer: " + r.error());
        }
    }
    return {};
}

void VirtioDevices::start() {
    if (io_) io_->start();
}

void VirtioDevices::stop() {
    if (io_) io_->stop();
}

void VirtioDevices::print_stats() const {
    if (slots_.empty()) return;
    auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    if (io_) {
        const auto& c = io_->counters();
        log_info("stats: {}: {} loops, {} completions, {} wakeups, SQ full {}", io_->name(), v(c.loops), v(c.completions),
                 v(c.wakeups), v(c.sq_full));
    }
    for (const auto& t : transports_) {
        const auto& c = t->counters();
        log_info("stats: {}: notifies {} (via vCPU exits {}), interrupts {}, config interrupts {}, resets {}, "
                 "needs-reset {}, bad register accesses {}, refused features {}, refused queues {}, warnings {}",
                 t->name(), v(c.notifies), v(c.notify_exits), v(c.interrupts), v(c.config_interrupts), v(c.resets),
                 v(c.needs_reset), v(c.bad_accesses), v(c.refused_features), v(c.refused_queues), t->warnings());
    }
    for (const VirtioBlk* b : blks_) {
        const auto& c = b->counters();
        log_info("stats: virtio-{} ({}): requests {}: reads {} ({} bytes), writes {} ({} bytes), flushes {}, get-id {}; "
                 "host I/O errors {}, bad requests {}, bad chains {}, read-only refusals {}, in-flight limit hits {} "
                 "(max in flight {}), bounced {}, too large to bounce {}, short transfers {}",
                 b->name(), b->image().path(), v(c.requests), v(c.reads), v(c.bytes_read), v(c.writes), v(c.bytes_written),
                 v(c.flushes), v(c.get_ids), v(c.io_errors), v(c.bad_requests), v(c.bad_chains), v(c.readonly_refused),
                 v(c.inflight_limit_hits), v(c.max_inflight_seen), v(c.bounced), v(c.bounce_too_large),
                 v(c.short_transfers));
    }
    if (balloon_) {
        const auto& c = balloon_->counters();
        log_info("stats: virtio-balloon: target {} pages, guest holds {}; inflated {} deflated {} (held now {}), "
                 "discarded {} bytes in {} ms, refused page numbers {}, discard failures {}, reported ranges {} ({} bytes), "
                 "stats updates {}, unknown stat tags {}, bad chains {}, oversized page lists {}, oversized stats {}",
                 balloon_->target_pages(), balloon_->actual_pages(), v(c.inflated_pages), v(c.deflated_pages),
                 v(c.balloon_pages), v(c.discarded_bytes), v(c.discard_ns) / 1000000, v(c.refused_pfns), v(c.discard_failures),
                 v(c.reported_ranges), v(c.reported_bytes), v(c.stats_updates), v(c.unknown_stat_tags), v(c.bad_chains),
                 v(c.oversized_page_lists), v(c.oversized_stats));
        if (auto s = balloon_->latest_stats()) {
            std::string line;
            for (unsigned t = 0; t < balloon::kStatTags; ++t)
                if (s->values[t]) line += fmt::format(" {}={}", balloon::stat_name(t), *s->values[t]);
            auto age = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - s->received);
            log_info("stats: virtio-balloon: guest stats #{} ({} ms old):{}", s->sequence, age.count(), line);
        }
    }
}

}  // namespace vireo
