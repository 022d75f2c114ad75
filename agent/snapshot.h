// What the controller sees each tick: one flat copy of the host's and every
// guest's counters. Counters are cumulative (as the kernel and the VMM keep
// them): the controller takes the differences between two ticks itself, so
// a late or skipped tick loses no evidence.
//
// Filled by the live host (vmm/, from telemetry.h records, the balloon
// device, /proc/stat and /proc/pressure/*), by the simulator, and read back
// from a trace (agent/trace.h). Nothing here refers to vmm/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vireo/actions.h"

namespace vireo::agent {

// How a guest wants its CPU: latency-sensitive guests are mostly halted and
// wake for short bursts (their run-queue wait is what users feel); batch
// guests burn CPU (their throughput matters, a wait of a few ms does not).
enum class GuestClass { Unknown, LatencySensitive, Batch };

constexpr std::string_view to_string(GuestClass c) {
    return c == GuestClass::LatencySensitive ? "latency-sensitive" : c == GuestClass::Batch ? "batch" : "unknown";
}
inline std::optional<GuestClass> parse_guest_class(std::string_view text) {
    if (text == "latency-sensitive") return GuestClass::LatencySensitive;
    if (text == "batch") return GuestClass::Batch;
    if (text == "unknown") return GuestClass::Unknown;
    return std::nullopt;
}

// virtio-balloon statistics (VIRTIO_BALLOON_S_*), in bytes or events as the
// guest reports them; a tag the guest did not send is nullopt.
struct BalloonStats {
    std::optional<uint64_t> swap_in;           // bytes swapped in (cumulative)
    std::optional<uint64_t> swap_out;          // bytes swapped out (cumulative)
    std::optional<uint64_t> major_faults;      // cumulative
    std::optional<uint64_t> minor_faults;      // cumulative
    std::optional<uint64_t> free_memory;       // bytes, now
    std::optional<uint64_t> total_memory;      // bytes, now
    std::optional<uint64_t> available_memory;  // bytes, now (MemAvailable)
    std::optional<uint64_t> disk_caches;       // bytes, now
    std::optional<uint64_t> hugetlb_allocations;
    std::optional<uint64_t> hugetlb_failures;
    bool operator==(const BalloonStats&) const = default;
};

struct BalloonSample {
    uint64_t target_bytes = 0;  // what vireo asked the guest to give back
    uint64_t actual_bytes = 0;  // what the guest has given back
    uint64_t deflate_on_oom_events = 0;  // cumulative: the guest took pages back under OOM
    BalloonStats stats;
    bool operator==(const BalloonSample&) const = default;
};

struct VcpuSample {
    unsigned index = 0;
    int32_t tid = 0;
    std::optional<std::vector<unsigned>> pinned_cpus;  // nullopt: may run on every CPU vireo may use
    // Cumulative nanoseconds and counts since the vCPU started.
    uint64_t in_kvm_run_ns = 0;  // inside KVM_RUN: running the guest, halted in the kernel, or preempted
    uint64_t runq_wait_ns = 0;   // runnable but not running (woken or preempted)
    uint64_t runq_waits = 0;     // how many such waits
    uint64_t halt_wait_ns = 0;   // halted in KVM (the guest had nothing to do)
    uint64_t exits = 0;
    bool operator==(const VcpuSample&) const = default;
};

struct GuestSample {
    std::string name;
    uint64_t ram_bytes = 0;
    std::optional<BalloonSample> balloon;  // nullopt: the guest has no balloon device
    GuestClass configured_class = GuestClass::Unknown;  // Unknown: infer it from the halt/wake pattern
    GuestControl control;  // mode override and the levers an administrator holds
    std::vector<VcpuSample> vcpus;
    bool operator==(const GuestSample&) const = default;
};

struct HostCpuSample {
    unsigned cpu = 0;
    uint64_t busy_ns = 0;  // cumulative non-idle time (/proc/stat: all but idle and iowait)
    bool operator==(const HostCpuSample&) const = default;
};

// /proc/pressure/{memory,cpu}: percent of the last 10 s some / all tasks stalled.
struct HostPressure {
    double memory_some_avg10 = 0;
    double memory_full_avg10 = 0;
    double cpu_some_avg10 = 0;
    bool operator==(const HostPressure&) const = default;
};

struct Snapshot {
    uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC; must grow from one snapshot to the next
    ControllerMode mode = ControllerMode::Off;  // process-wide; a guest's control.mode overrides it
    ControllerLimits limits;
    std::vector<HostCpuSample> host_cpus;  // the CPUs vireo may use, in CPU order
    uint64_t host_mem_total_bytes = 0;      // MemTotal
    uint64_t host_mem_available_bytes = 0;  // MemAvailable
    HostPressure pressure;
    std::vector<GuestSample> guests;
    bool operator==(const Snapshot&) const = default;
};

constexpr ControllerMode effective_mode(const Snapshot& s, const GuestSample& g) { return g.control.mode.value_or(s.mode); }

}  // namespace vireo::agent
