// virtio-balloon (virtio 1.2 §5.5): the memory lever. The host sets a
// target (config num_pages, config-change interrupt); the guest inflates by
// handing over page numbers, which vireo gives back to the host at once
// (GuestMemory::discard: FALLOC_FL_PUNCH_HOLE on the memfd, so the pages
// leave vireo's RSS); it deflates by taking them back. Optional queues:
// stats (the device holds the guest's stats buffer and returns it every
// `stats` seconds to ask for fresh numbers) and free page reporting (free
// ranges the guest reports are discarded like inflated pages).
//
// The guest is hostile: a page number outside guest RAM is refused and
// counted, never discarded; a reported range is validated by the queue
// walker; stats entries are parsed by tag with unknown tags counted.
//
// Internal API for the control socket and the controller (any thread):
// set_target_pages/bytes, target_pages, actual_pages, latest_stats.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/devices/virtio/virtio_config.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/io/io_thread.h"
#include "vmm/kvm/guest_memory.h"

namespace vireo {

namespace balloon {
inline constexpr unsigned kFMustTellHost = 0;
inline constexpr unsigned kFStatsVq = 1;
inline constexpr unsigned kFDeflateOnOom = 2;
inline constexpr unsigned kFFreePageHint = 3;
inline constexpr unsigned kFPagePoison = 4;
inline constexpr unsigned kFPageReporting = 5;
inline constexpr unsigned kPfnShift = 12;  // page numbers are of 4 KiB pages, whatever the guest's page size
inline constexpr uint64_t kPageSize = 1ull << kPfnShift;

// Stats tags (§5.5.6.3, plus the ones Linux added since).
enum StatTag : uint16_t {
    kSwapIn = 0,
    kSwapOut = 1,
    kMajorFaults = 2,
    kMinorFaults = 3,
    kMemFree = 4,
    kMemTotal = 5,
    kMemAvailable = 6,
    kDiskCaches = 7,
    kHugetlbAllocations = 8,
    kHugetlbFailures = 9,
    kOomKills = 10,
    kAllocStalls = 11,
    kAsyncScans = 12,
    kDirectScans = 13,
    kAsyncReclaims = 14,
    kDirectReclaims = 15,
    kStatTags = 16,
};
const char* stat_name(unsigned tag);
}  // namespace balloon

struct BalloonStats {
    std::chrono::steady_clock::time_point received;
    std::chrono::system_clock::time_point received_wall;
    uint64_t sequence = 0;  // 1 for the first stats of this run
    std::array<std::optional<uint64_t>, balloon::kStatTags> values{};  // only the tags the guest sent
};

struct VirtioBalloonCounters {
    std::atomic<uint64_t> inflated_pages{0};   // page numbers accepted on the inflate queue
    std::atomic<uint64_t> deflated_pages{0};
    std::atomic<uint64_t> balloon_pages{0};    // inflated minus deflated: pages the host holds back now
    std::atomic<uint64_t> discarded_bytes{0};  // given back to the host (inflate + reporting)
    std::atomic<uint64_t> discard_ns{0};       // time spent giving them back (fallocate)
    std::atomic<uint64_t> refused_pfns{0};     // page numbers outside guest RAM
    std::atomic<uint64_t> discard_failures{0};
    std::atomic<uint64_t> reported_ranges{0};  // free page reporting
    std::atomic<uint64_t> reported_bytes{0};
    std::atomic<uint64_t> stats_updates{0};
    std::atomic<uint64_t> unknown_stat_tags{0};
    std::atomic<uint64_t> bad_chains{0};
    std::atomic<uint64_t> target_changes{0};
    // Deflate-on-OOM: the guest took back pages the host had not
    // released -- a deflate that left the balloon below its target. Counted
    // once per deflate batch (events) and per page below the target.
    std::atomic<uint64_t> deflate_on_oom_events{0};
    std::atomic<uint64_t> deflate_on_oom_pages{0};
    // Limits on what the guest controls, each hit counted: a page-list buffer carries at most
    // kMaxPagesPerBuffer page numbers (the rest are ignored), a stats buffer
    // at most kMaxStatsBytes (the rest ignored).
    std::atomic<uint64_t> oversized_page_lists{0};
    std::atomic<uint64_t> oversized_stats{0};
};

class VirtioBalloon final : public VirtioDevice {
public:
    static constexpr uint16_t kQueueSize = 256;
    // Linux sends 256 page numbers per buffer (VIRTIO_BALLOON_ARRAY_PFNS_MAX)
    // and ~16 stats; without these bounds one descriptor over all of guest
    // RAM would make the host hold 2 bytes per guest byte and walk it all.
    // With them one batch of page lists costs at most kQueueSize x 4096 x 8
    // bytes = 8 MiB, kept for reuse.
    static constexpr uint32_t kMaxPagesPerBuffer = 4096;
    static constexpr uint32_t kMaxStatsBytes = 4096;

    VirtioBalloon(const GuestMemory& mem, BalloonConfig config, IoThread& io);

    // --- internal API (any thread) --------------------------------------
    // Asks the guest to hold `pages` 4 KiB pages (config num_pages, then a
    // config-change interrupt). More pages than guest RAM is an error.
    std::expected<void, std::string> set_target_pages(uint64_t pages);
    std::expected<void, std::string> set_target_bytes(uint64_t bytes);
    uint32_t target_pages() const;
    // What the guest says it holds (config `actual`, driver-written).
    uint32_t actual_pages() const;
    // When the guest's `actual` first matched the current target (none: not
    // yet). Drives the test-only target-after entries.
    std::optional<std::chrono::steady_clock::time_point> target_reached_at() const;
    std::optional<BalloonStats> latest_stats() const;
    uint64_t guest_ram_pages() const { return ram_pages_; }
    const VirtioBalloonCounters& counters() const { return counters_; }
    const BalloonConfig& config() const { return config_; }

    // The machine hands over the transport right after creating it, so a
    // target set before the driver starts still bumps the config generation.
    void attach(VirtioTransport& transport) { transport_ = &transport; }

    // --- VirtioDevice ----------------------------------------------------
    std::string_view name() const override { return "balloon"; }
    uint32_t device_id() const override;
    uint64_t device_features() const override;
    unsigned max_queues() const override;
    uint16_t queue_max_size(unsigned) const override { return kQueueSize; }
    unsigned queue_count(uint64_t features) const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void activate(VirtioTransport& transport) override;
    void process_queue(unsigned queue) override;
    void reset() override;

private:
    enum class Role { Inflate, Deflate, Stats, Reporting, None };
    Role role(unsigned queue) const;
    void handle_pages(unsigned queue, bool inflate);
    void handle_stats(unsigned queue);
    void handle_reporting(unsigned queue);
    void request_stats();
    void discard(uint64_t addr, uint64_t len);

    const GuestMemory& mem_;
    BalloonConfig config_;
    IoThread& io_;
    VirtioTransport* transport_ = nullptr;
    uint64_t ram_pages_ = 0;

    // Under the transport lock:
    uint32_t num_pages_ = 0;  // target
    uint32_t actual_ = 0;
    uint32_t poison_ = 0;
    std::chrono::steady_clock::time_point target_set_{};
    // When `actual` first matched the target since it was set (logged then);
    // none while the guest is still on its way.
    std::optional<std::chrono::steady_clock::time_point> target_reached_at_ = std::chrono::steady_clock::now();
    std::optional<uint16_t> held_stats_;  // the stats buffer the device keeps until it wants new numbers
    DescChain chain_;
    std::vector<uint64_t> pfns_;
    std::vector<uint16_t> heads_;
    bool discard_failure_logged_ = false, refused_logged_ = false;

    mutable std::mutex stats_mutex_;
    std::optional<BalloonStats> stats_;
    VirtioBalloonCounters counters_;
};

}  // namespace vireo
