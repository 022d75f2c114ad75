#include "vmm/security/limits.h"

#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/devices/virtio/blk/blk.h"
#include "vmm/devices/virtio/virtio_devices.h"
#include "vmm/devices/virtio/virtio_mmio.h"

namespace vireo {

std::vector<std::pair<std::string, uint64_t>> guest_limit_hits(const VirtioDevices* devices) {
    uint64_t queue_config = 0, bad_chains = 0, blk_inflight = 0, blk_bounce = 0, pfns_outside = 0, page_lists = 0,
             stats_size = 0;
    if (devices)
        for (const auto& t : devices->transports()) {
            queue_config += t->counters().refused_queues.load(std::memory_order_relaxed);
            VirtioDevice& d = t->device();
            if (auto* blk = dynamic_cast<const VirtioBlk*>(&d)) {
                const auto& c = blk->counters();
                bad_chains += c.bad_chains.load(std::memory_order_relaxed);
                blk_inflight += c.inflight_limit_hits.load(std::memory_order_relaxed);
                blk_bounce += c.bounce_too_large.load(std::memory_order_relaxed);
            } else if (auto* b = dynamic_cast<const VirtioBalloon*>(&d)) {
                const auto& c = b->counters();
                bad_chains += c.bad_chains.load(std::memory_order_relaxed);
                pfns_outside += c.refused_pfns.load(std::memory_order_relaxed);
                page_lists += c.oversized_page_lists.load(std::memory_order_relaxed);
                stats_size += c.oversized_stats.load(std::memory_order_relaxed);
            }
        }
    return {
        {"virtio_queue_size", queue_config},          // a queue larger than the device's maximum (or not a power of 2)
        {"virtio_chain", bad_chains},                 // chains over the queue size, loops, bad indirect tables, outside RAM
        {"blk_inflight", blk_inflight},               // VirtioBlk::kMaxInflight requests in flight
        {"blk_bounce_bytes", blk_bounce},             // a request over VirtioBlk::kMaxBounce needing a bounce buffer
        {"balloon_pfn_outside_ram", pfns_outside},
        {"balloon_page_list", page_lists},            // VirtioBalloon::kMaxPagesPerBuffer
        {"balloon_stats_bytes", stats_size},          // VirtioBalloon::kMaxStatsBytes
    };
}

}  // namespace vireo
