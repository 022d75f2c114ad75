// From two snapshots to what the models and policies reason about: rates
// per tick (differences of the cumulative counters over the elapsed time),
// smoothed demands, memory use and pressure signals, and each guest's class
// (configured, or inferred from how its vCPUs halt and wake).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/snapshot.h"

namespace vireo::agent {

struct VcpuFeatures {
    unsigned index = 0;
    std::vector<unsigned> cpus;  // where it may run: its pin, or every host CPU
    bool pinned = false;
    // Shares of this tick (seconds per second).
    double run_share = 0;
    double wait_share = 0;   // run-queue wait
    double halt_share = 0;
    double wakes_per_s = 0;  // run-queue waits per second
    // What it wanted: a vCPU that halted got all it asked for (run share);
    // one that never halted wanted the CPU for its waits too.
    double demand = 0;
    double demand_avg = 0;  // exponentially smoothed (demand_half_life_s)
    double wait_per_wake_us = 0;
};

struct GuestFeatures {
    const GuestSample* sample = nullptr;  // into the snapshot of this tick
    ControllerMode mode = ControllerMode::Off;
    GuestClass guest_class = GuestClass::Unknown;  // configured, else inferred
    bool class_inferred = false;
    bool fresh = false;  // first tick we see it: rates are not known yet
    double age_s = 0;    // since we first saw it
    // Memory, from the balloon stats (nullopt: no balloon or no stats).
    std::optional<uint64_t> used_bytes;       // total - available, balloon excluded
    std::optional<uint64_t> available_bytes;  // what the guest could still use
    double major_faults_per_s = 0;
    uint64_t swap_in_bytes = 0;      // this tick
    uint64_t deflate_on_oom = 0;     // events this tick
    std::vector<VcpuFeatures> vcpus;
};

struct HostFeatures {
    std::vector<unsigned> cpus;
    std::vector<double> busy_share;  // per entry of cpus
    std::vector<double> other_load;  // busy share not explained by vCPUs (smoothed)
    // The same per CPU on average, from the totals (smoothed). Exact where
    // other_load is not: an unpinned vCPU's run time is known only in total,
    // so other_load splits it evenly over its CPUs, and a CPU the kernel
    // filled with vCPUs shows "other" load that the one it left idle lacks.
    double other_load_per_cpu = 0;
    double mem_available_fraction = 1.0;
    HostPressure pressure;
};

struct Features {
    const Snapshot* snapshot = nullptr;
    uint64_t now_ns = 0;
    double dt_s = 0;  // since the previous snapshot (0 on the first)
    HostFeatures host;
    std::vector<GuestFeatures> guests;
};

struct FeatureParams {
    double demand_half_life_s = 30;
    double class_half_life_s = 120;
    // Latency-sensitive: mostly halted, waking often for short bursts.
    double ls_min_halt_share = 0.6;
    double ls_max_run_per_wake_us = 2000;
    // Batch: busy most of the time.
    double batch_min_demand = 0.5;
};

class FeatureExtractor {
public:
    explicit FeatureExtractor(FeatureParams params = {}) : params_(params) {}
    // The returned features point into `snapshot`; keep it alive while using them.
    Features update(const Snapshot& snapshot);

private:
    struct VcpuHistory {
        VcpuSample last;
        double demand_avg = 0;
        bool seen = false;
        bool demand_known = false;
    };
    struct GuestHistory {
        uint64_t first_seen_ns = 0;
        uint64_t last_seen_ns = 0;
        std::vector<VcpuHistory> vcpus;
        std::optional<BalloonSample> balloon;
        double halt_avg = 0, run_per_wake_avg_us = 0, demand_avg = 0;
        bool class_seen = false;
    };

    FeatureParams params_;
    std::unordered_map<std::string, GuestHistory> guests_;
    std::vector<HostCpuSample> last_cpus_;
    std::vector<double> other_load_;
    double other_load_per_cpu_ = 0;
    uint64_t last_ns_ = 0;
    bool first_ = true;
    bool other_seen_ = false;  // other_load_per_cpu_ holds a measurement
};

}  // namespace vireo::agent
