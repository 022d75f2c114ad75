#include "vmm/devices/virtio/balloon/balloon.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/log.h"

namespace vireo {

using namespace virtio;

namespace {
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
uint64_t monotonic_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}
}  // namespace

const char* balloon::stat_name(unsigned tag) {
    static constexpr const char* names[] = {"swap_in",     "swap_out",        "major_faults",   "minor_faults",
                                            "free",        "total",           "available",      "disk_caches",
                                            "hugetlb_alloc", "hugetlb_fail",  "oom_kills",      "alloc_stalls",
                                            "async_scans", "direct_scans",    "async_reclaims", "direct_reclaims"};
    return tag < kStatTags ? names[tag] : "unknown";
}

VirtioBalloon::VirtioBalloon(const GuestMemory& mem, BalloonConfig config, IoThread& io)
    : mem_(mem), config_(std::move(config)), io_(io) {
    ram_pages_ = mem_.total_size() >> balloon::kPfnShift;
    chain_.segments.reserve(kQueueSize);
    heads_.reserve(kQueueSize);
    if (config_.stats_seconds) {
        auto period = std::chrono::seconds(config_.stats_seconds);
        if (auto r = io_.add_timer(period, period, [this] { request_stats(); }); !r)
            log_warn("virtio-balloon: no stats timer: {}", r.error());
    }
}

uint32_t VirtioBalloon::device_id() const { return kDeviceBalloon; }

uint64_t VirtioBalloon::device_features() const {
    uint64_t f = 0;
    if (config_.stats_seconds) f |= bit(balloon::kFStatsVq);
    if (config_.deflate_on_oom) f |= bit(balloon::kFDeflateOnOom);
    if (config_.reporting) f |= bit(balloon::kFPageReporting);
    return f;
}

unsigned VirtioBalloon::max_queues() const { return 2 + (config_.stats_seconds ? 1 : 0) + (config_.reporting ? 1 : 0); }

// The queues present depend on the negotiated features and are numbered
// without gaps (§5.5.2 lists them in this order; Linux numbers only the
// ones it uses, so with reporting but no stats, reporting is queue 2).
unsigned VirtioBalloon::queue_count(uint64_t f) const {
    return 2 + ((f & bit(balloon::kFStatsVq)) ? 1 : 0) + ((f & bit(balloon::kFPageReporting)) ? 1 : 0);
}

VirtioBalloon::Role VirtioBalloon::role(unsigned q) const {
    if (q == 0) return Role::Inflate;
    if (q == 1) return Role::Deflate;
    uint64_t f = transport_ ? transport_->negotiated_features() : 0;
    unsigned next = 2;
    if (f & bit(balloon::kFStatsVq)) {
        if (q == next) return Role::Stats;
        ++next;
    }
    if ((f & bit(balloon::kFPageReporting)) && q == next) return Role::Reporting;
    return Role::None;
}

// ------------------------------------------------------------ config space (§5.5.4)
// le32 num_pages (device), le32 actual (driver), le32 free_page_hint_cmd_id,
// le32 poison_val (driver).
void VirtioBalloon::read_config(uint64_t offset, std::span<uint8_t> data) {
    uint8_t cfg[16] = {};
    std::memcpy(cfg + 0, &num_pages_, 4);
    std::memcpy(cfg + 4, &actual_, 4);
    std::memcpy(cfg + 12, &poison_, 4);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

void VirtioBalloon::write_config(uint64_t offset, std::span<const uint8_t> data) {
    auto patch = [&](uint32_t& field, uint64_t base) {
        uint8_t bytes[4];
        std::memcpy(bytes, &field, 4);
        for (size_t i = 0; i < data.size(); ++i)
            if (offset + i >= base && offset + i < base + 4) bytes[offset + i - base] = data[i];
        std::memcpy(&field, bytes, 4);
    };
    bool touched = false;
    if (offset < 8 && offset + data.size() > 4) {
        uint32_t before = actual_;
        patch(actual_, 4);
        touched = true;
        if (actual_ != before) {
            log_debug("virtio-balloon: guest holds {} pages ({} MiB)", actual_, uint64_t(actual_) >> 8);
            if (!target_reached_at_ && actual_ == num_pages_) {
                target_reached_at_ = std::chrono::steady_clock::now();
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*target_reached_at_ - target_set_)
                              .count();
                log_info("virtio-balloon: guest reached the target of {} pages ({} MiB) in {} ms", actual_,
                         uint64_t(actual_) >> 8, ms);
            }
        }
    }
    if (offset < 16 && offset + data.size() > 12) {
        patch(poison_, 12);
        touched = true;
    }
    if (!touched && transport_)
        transport_->warn(fmt::format("write of {} bytes to read-only balloon config offset {:#x}", data.size(), offset));
}

// ------------------------------------------------------------ internal API

std::expected<void, std::string> VirtioBalloon::set_target_pages(uint64_t pages) {
    if (pages > ram_pages_)
        return std::unexpected(fmt::format("balloon target of {} pages ({} MiB) is more than the guest's {} MiB of RAM",
                                           pages, pages >> 8, ram_pages_ >> 8));
    std::unique_lock<std::mutex> lock;
    if (transport_) lock = transport_->lock();
    uint32_t before = num_pages_;
    num_pages_ = uint32_t(pages);
    target_set_ = std::chrono::steady_clock::now();
    target_reached_at_ = num_pages_ == actual_ ? std::optional(target_set_) : std::nullopt;
    bump(counters_.target_changes);
    log_info("virtio-balloon: target {} pages ({} MiB), was {} pages; guest holds {}; set at monotonic_ns={}",
             num_pages_, pages >> 8, before, actual_, monotonic_ns());
    if (transport_) transport_->config_changed();
    return {};
}

std::expected<void, std::string> VirtioBalloon::set_target_bytes(uint64_t bytes) {
    return set_target_pages(bytes >> balloon::kPfnShift);
}

uint32_t VirtioBalloon::target_pages() const {
    std::unique_lock<std::mutex> lock;
    if (transport_) lock = transport_->lock();
    return num_pages_;
}

std::optional<std::chrono::steady_clock::time_point> VirtioBalloon::target_reached_at() const {
    std::unique_lock<std::mutex> lock;
    if (transport_) lock = transport_->lock();
    return target_reached_at_;
}

uint32_t VirtioBalloon::actual_pages() const {
    std::unique_lock<std::mutex> lock;
    if (transport_) lock = transport_->lock();
    return actual_;
}

std::optional<BalloonStats> VirtioBalloon::latest_stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

// ------------------------------------------------------------ queues

void VirtioBalloon::activate(VirtioTransport& transport) { transport_ = &transport; }

void VirtioBalloon::reset() {
    held_stats_.reset();
    actual_ = 0;
    poison_ = 0;
    // After a reset the guest owns all its memory again.
    counters_.balloon_pages.store(0, std::memory_order_relaxed);
}

void VirtioBalloon::process_queue(unsigned q) {
    if (!transport_ || !transport_->running()) return;
    VirtQueue& vq = transport_->queue(q);
    if (!vq.ready()) return;
    do {
        switch (role(q)) {
            case Role::Inflate: handle_pages(q, true); break;
            case Role::Deflate: handle_pages(q, false); break;
            case Role::Stats: handle_stats(q); break;
            case Role::Reporting: handle_reporting(q); break;
            case Role::None: return;
        }
        if (!transport_->running()) return;
    } while (vq.enable_notifications());
}

void VirtioBalloon::discard(uint64_t addr, uint64_t len) {
    auto t0 = std::chrono::steady_clock::now();
    bool ok = mem_.discard(addr, len);
    int err = errno;
    bump(counters_.discard_ns, uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::steady_clock::now() - t0)
                                            .count()));
    if (ok) {
        bump(counters_.discarded_bytes, len);
        return;
    }
    bump(counters_.discard_failures);
    if (!discard_failure_logged_) {
        discard_failure_logged_ = true;
        log_warn("virtio-balloon: cannot give [{:#x}, +{:#x}) back to the host: {}{} (counted; logged once)", addr, len,
                 std::strerror(err), err == EINVAL ? " (hugepage-backed RAM cannot free 4 KiB pages)" : "");
    }
}

void VirtioBalloon::handle_pages(unsigned q, bool inflate) {
    VirtQueue& vq = transport_->queue(q);
    // Every buffer available now is read first and the page numbers of all
    // of them given back together: sorted and merged into runs, so a guest
    // that hands over contiguous memory costs one hole (and one MMU-notifier
    // invalidation in KVM) per run instead of one per page or per buffer.
    // The buffers go back to the driver after the pages are gone.
    pfns_.clear();
    heads_.clear();
    uint64_t refused = 0;
    for (;;) {
        auto popped = vq.pop(chain_);
        if (!popped) {
            auto head = transport_->refuse(q, inflate ? "inflate" : "deflate", popped.error(), counters_.bad_chains);
            if (!head) return;
            heads_.push_back(*head);
            continue;
        }
        if (!*popped) break;
        heads_.push_back(chain_.head);
        if (chain_.writable_bytes) {
            bump(counters_.bad_chains);
            transport_->warn(fmt::format("{} queue: page list in a device-writable buffer", inflate ? "inflate" : "deflate"));
            continue;
        }
        // The buffer is an array of le32 page numbers, possibly split across
        // descriptors (and even within one number).
        uint8_t partial[4];
        unsigned have = 0;
        uint32_t in_buffer = 0;
        bool oversized = false;
        for (const auto& s : chain_.segments) {
            if (oversized) break;
            for (uint8_t byte : s.host) {
                partial[have++] = byte;
                if (have < 4) continue;
                have = 0;
                if (++in_buffer > kMaxPagesPerBuffer) {
                    oversized = true;
                    break;
                }
                uint32_t pfn;
                std::memcpy(&pfn, partial, 4);
                if (!mem_.contains(uint64_t(pfn) << balloon::kPfnShift, balloon::kPageSize)) {
                    ++refused;
                    continue;
                }
                pfns_.push_back(pfn);
            }
        }
        if (oversized) {
            bump(counters_.oversized_page_lists);
            transport_->warn(fmt::format("{} queue: a buffer of more than {} page numbers; the rest are ignored (counted)",
                                         inflate ? "inflate" : "deflate", kMaxPagesPerBuffer));
        }
    }
    if (heads_.empty()) return;
    if (refused) {
        bump(counters_.refused_pfns, refused);
        if (!refused_logged_) {
            refused_logged_ = true;
            log_warn("virtio-balloon: refused {} page numbers outside guest RAM (counted; logged once)", refused);
        }
    }
    uint64_t n = pfns_.size();
    if (inflate) {
        std::sort(pfns_.begin(), pfns_.end());
        size_t i = 0;
        while (i < pfns_.size()) {
            size_t j = i + 1;
            while (j < pfns_.size() && pfns_[j] <= pfns_[j - 1] + 1) ++j;
            uint64_t first = pfns_[i], last = pfns_[j - 1];
            discard(first << balloon::kPfnShift, (last - first + 1) << balloon::kPfnShift);
            i = j;
        }
        bump(counters_.inflated_pages, n);
        bump(counters_.balloon_pages, n);
    } else {
        bump(counters_.deflated_pages, n);
        uint64_t held = counters_.balloon_pages.load(std::memory_order_relaxed);
        uint64_t now_held = held > n ? held - n : 0;
        counters_.balloon_pages.store(now_held, std::memory_order_relaxed);
        // Below the target the host set: the guest needed them (deflate-on-OOM).
        if (n > 0 && now_held < num_pages_) {
            bump(counters_.deflate_on_oom_events);
            bump(counters_.deflate_on_oom_pages, std::min<uint64_t>(n, num_pages_ - now_held));
        }
    }
    for (uint16_t head : heads_) vq.push_used(head, 0);
    transport_->publish_used(q);
}

void VirtioBalloon::handle_stats(unsigned q) {
    VirtQueue& vq = transport_->queue(q);
    for (;;) {
        auto popped = vq.pop(chain_);
        if (!popped) {
            auto head = transport_->refuse(q, "stats", popped.error(), counters_.bad_chains);
            if (!head) return;
            vq.push_used(*head, 0);
            transport_->publish_used(q);
            continue;
        }
        if (!*popped) return;
        // A second buffer while one is held: give the old one back.
        if (held_stats_) {
            vq.push_used(*held_stats_, 0);
            transport_->publish_used(q);
        }
        held_stats_ = chain_.head;
        // struct virtio_balloon_stat { le16 tag; le64 val; } packed: 10 bytes.
        BalloonStats stats;
        stats.received = std::chrono::steady_clock::now();
        stats.received_wall = std::chrono::system_clock::now();
        uint8_t entry[10];
        unsigned have = 0;
        uint64_t unknown = 0;
        uint32_t bytes = 0;
        bool oversized = false;
        for (const auto& s : chain_.segments) {
            if (s.writable) continue;
            if (oversized) break;
            for (uint8_t byte : s.host) {
                if (bytes++ == kMaxStatsBytes) {
                    oversized = true;
                    break;
                }
                entry[have++] = byte;
                if (have < sizeof entry) continue;
                have = 0;
                uint16_t tag;
                uint64_t val;
                std::memcpy(&tag, entry, 2);
                std::memcpy(&val, entry + 2, 8);
                if (tag < balloon::kStatTags)
                    stats.values[tag] = val;
                else
                    ++unknown;
            }
        }
        if (oversized) {
            bump(counters_.oversized_stats);
            transport_->warn(fmt::format("stats queue: a buffer over {} bytes; the rest is ignored (counted)", kMaxStatsBytes));
        }
        if (unknown) bump(counters_.unknown_stat_tags, unknown);
        bump(counters_.stats_updates);
        std::string line;
        for (unsigned t = 0; t < balloon::kStatTags; ++t)
            if (stats.values[t]) line += fmt::format(" {}={}", balloon::stat_name(t), *stats.values[t]);
        {
            std::lock_guard lock(stats_mutex_);
            stats.sequence = stats_ ? stats_->sequence + 1 : 1;
            stats_ = stats;
        }
        if (stats.sequence == 1)
            log_info("virtio-balloon: first stats from the guest:{}", line);
        else
            log_debug("virtio-balloon: stats #{}:{}", stats.sequence, line);
    }
}

// Timer (I/O thread): return the held stats buffer, which asks the driver
// to refill it with fresh numbers (§5.5.6.3).
void VirtioBalloon::request_stats() {
    if (!transport_) return;
    auto lock = transport_->lock();
    if (!transport_->running() || !held_stats_) return;
    unsigned q = 2;  // the stats queue is always the first after deflate
    if (role(q) != Role::Stats) return;
    transport_->queue(q).push_used(*held_stats_, 0);
    held_stats_.reset();
    transport_->publish_used(q);
}

void VirtioBalloon::handle_reporting(unsigned q) {
    VirtQueue& vq = transport_->queue(q);
    bool pushed = false;
    for (;;) {
        auto popped = vq.pop(chain_);
        if (!popped) {
            auto head = transport_->refuse(q, "reporting", popped.error(), counters_.bad_chains);
            if (!head) return;
            vq.push_used(*head, 0);
            pushed = true;
            continue;
        }
        if (!*popped) break;
        // Each descriptor is one free range (Linux adds them device-writable).
        // The walker checked it lies in guest RAM; only whole 4 KiB pages go.
        for (const auto& s : chain_.segments) {
            uint64_t begin = (s.addr + balloon::kPageSize - 1) & ~(balloon::kPageSize - 1);
            uint64_t end = (s.addr + s.len) & ~(balloon::kPageSize - 1);
            if (end <= begin) continue;
            discard(begin, end - begin);
            bump(counters_.reported_ranges);
            bump(counters_.reported_bytes, end - begin);
        }
        vq.push_used(chain_.head, 0);
        pushed = true;
    }
    if (pushed) transport_->publish_used(q);
}

}  // namespace vireo
