// How the user describes virtio devices: `--disk PATH[,opts]` and
// `--balloon [opts]`, parsed into these structs (syntax only; files are
// opened and locked when the machine is built).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

namespace vireo {

struct DiskConfig {
    std::string path;
    bool read_only = false;
    bool direct = false;          // O_DIRECT: no host page cache
    unsigned queues = 1;          // request queues (VIRTIO_BLK_F_MQ when > 1)
    unsigned queue_size = 256;    // QueueNumMax of each queue, a power of two
    std::string serial;           // GET_ID; empty = derived from the file
    // Poll a queue for this long after activity instead of waiting for the
    // guest's notification (VirtioBlk: why and when it pays); 0 = never.
    unsigned poll_us = 0;

    static constexpr unsigned kMaxQueues = 16;
    static constexpr unsigned kMaxQueueSize = 1024;  // a chain must fit in one readv (IOV_MAX)
    static constexpr unsigned kMaxPollUs = 100000;
};

// TEST-ONLY: `target-at=SECONDS:MIB` sets the balloon target to MIB MiB
// SECONDS after start; `target-after=SECONDS:MIB` sets it SECONDS after the
// guest has reached the target before it (the target-after entries run in
// order, each after the previous one, the first after the first target-at).
// Tests and the reclaim benchmark drive the balloon this way without a
// control client; target-after keeps a scenario independent of how fast a
// slow (emulated) guest inflates. Not a user interface.
struct BalloonTargetAt {
    double seconds = 0;
    uint64_t mib = 0;
    bool after_reached = false;  // target-after: SECONDS count from the guest reaching the previous target
};

struct BalloonConfig {
    bool deflate_on_oom = false;  // VIRTIO_BALLOON_F_DEFLATE_ON_OOM
    unsigned stats_seconds = 0;   // VIRTIO_BALLOON_F_STATS_VQ, polled this often; 0 = no stats queue
    bool reporting = false;       // VIRTIO_BALLOON_F_PAGE_REPORTING
    std::vector<BalloonTargetAt> target_at;  // test-only, see above
};

// "PATH[,ro][,direct][,queues=N][,queue-size=M][,serial=S][,poll=US]"; errors name
// the option and say what is wrong ("--disk img,queues=0: ...").
std::expected<DiskConfig, std::string> parse_disk_spec(const std::string& spec);
// "[deflate-on-oom][,stats=SECONDS][,reporting]" (empty or "on": defaults).
std::expected<BalloonConfig, std::string> parse_balloon_spec(const std::string& spec);

}  // namespace vireo
