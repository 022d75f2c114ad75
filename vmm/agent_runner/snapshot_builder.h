// The controller's view of the live host, one agent::Snapshot per tick,
// gathered in two halves on two threads:
//
//   on the host's loop thread (the only one that may read guests, pinning,
//   balloon targets, overrides, mode and limits): gather_from_host()
//   (host_gather.h) copies them, with each vCPU's thread id, its eBPF
//   run-queue counters and the balloon device's actual size, stats and
//   deflate-on-OOM count;
//
//   on the controller thread: SnapshotBuilder::complete() adds what the
//   kernel says -- per-CPU busy time (/proc/stat), MemTotal/MemAvailable
//   (/proc/meminfo), PSI (/proc/pressure/{cpu,memory}; a kernel without PSI
//   reads as 0, said once) -- and each vCPU thread's time from
//   /proc/<pid>/task/<tid>/schedstat: on CPU, waiting on a run queue, and
//   the rest of its life, which is halted (HLT in KVM, or the test guest's
//   idle port: both sleep the thread). That is the same split on every KVM
//   and for every guest, and needs no BPF; the eBPF run-queue counters,
//   where attached, give the number of waits.
//
// The parsers are separate functions so the unit tests can feed them text.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/snapshot.h"
#include "vmm/cpu_list.h"

namespace vireo {

namespace agent_runner {

// What the loop thread hands over: the snapshot without the host's kernel
// figures, and the vCPU threads to read.
struct HostPart {
    agent::Snapshot snapshot;  // timestamp, mode, limits, guests (vCPU times not yet filled)
    std::vector<unsigned> allowed_cpus;
    bool any_on = false;  // some guest's effective mode is not off
    // Per guest, per vCPU (parallel to snapshot.guests[i].vcpus): whether
    // the eBPF run-queue probe counted its waits.
    std::vector<std::vector<bool>> bpf_runq;
};

// --- parsers (pure) ---------------------------------------------------
struct SchedStat {
    uint64_t cpu_ns = 0;   // on a CPU
    uint64_t wait_ns = 0;  // runnable, waiting on a run queue
    uint64_t slices = 0;   // times it was put on a CPU
};
std::optional<SchedStat> parse_schedstat(std::string_view text);
// /proc/stat: cumulative non-idle nanoseconds of each listed CPU ("cpuN" lines).
std::map<unsigned, uint64_t> parse_proc_stat(std::string_view text, long clock_ticks_per_s);
// /proc/pressure/*: the avg10 of the "some" or "full" line; nullopt if absent.
std::optional<double> parse_psi_avg10(std::string_view text, std::string_view kind);
// /proc/meminfo: a field in bytes ("MemTotal", "MemAvailable").
std::optional<uint64_t> parse_meminfo(std::string_view text, std::string_view field);

// Controller thread only (keeps per-thread baselines between ticks); also
// vireoctl record, which builds the HostPart from the control socket.
class SnapshotBuilder {
public:
    // `pid`: the vireo process whose vCPU threads are read (vireoctl
    // record reads another process's).
    explicit SnapshotBuilder(pid_t pid = 0);
    agent::Snapshot complete(HostPart part);

private:
    struct ThreadBase {
        uint64_t first_ns = 0;     // monotonic, when first seen
        SchedStat at_first;
        uint64_t halt_ns = 0;      // kept monotonic
        uint64_t seen_ns = 0;
    };
    pid_t pid_;
    long ticks_per_s_;
    bool psi_missing_logged_ = false;
    std::map<pid_t, ThreadBase> threads_;
};

}  // namespace agent_runner
}  // namespace vireo
