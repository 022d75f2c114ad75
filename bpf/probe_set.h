// The loader of vireo's eBPF probes (one bpf/<probe>.bpf.c each, linked
// into one object; each probe's map handling in bpf/<probe>.cpp): loads and
// attaches what this kernel supports, one probe at a time, and turns the
// maps into telemetry records (include/vireo/telemetry.h).
//
// Without BPF rights, BTF or tracefs vireo runs on: the probes that cannot
// run are off, and start() says so once, in one line.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "vireo/telemetry.h"

namespace vireo {

enum class ProbeMode {
    Off,   // load nothing
    Auto,  // load what works; one line says what is off and why
    On,    // every probe must work, else vireo does not start
};
// Inline: the command line parses this without pulling in libbpf.
inline std::optional<ProbeMode> parse_probe_mode(std::string_view text) {
    if (text == "off") return ProbeMode::Off;
    if (text == "auto") return ProbeMode::Auto;
    if (text == "on") return ProbeMode::On;
    return std::nullopt;
}
inline std::string_view to_string(ProbeMode mode) {
    return mode == ProbeMode::Off ? "off" : mode == ProbeMode::On ? "on" : "auto";
}

enum class Probe : unsigned {
    VcpuTime,     // KVM_RUN boundaries + kvm_userspace_exit
    KernelExits,  // kvm_exit -> kvm_entry
    RunQueue,     // sched_wakeup / sched_switch
    Blk,          // io_uring + virtio-blk notify/interrupt
};
inline constexpr unsigned kProbeCount = 4;
std::string_view probe_name(Probe probe);

struct ProbeOptions {
    unsigned vcpus = 1;            // vCPU slots 0..vcpus-1
    unsigned blk_devices = 0;      // 0: the blk probe is not needed (not loaded, not reported)
    unsigned blk_inflight = 4096;  // requests in flight tracked at once
};

class ProbeSet {
public:
    // Off: nullptr. Auto: whatever attaches (never an error; notice() says
    // what is off). On: an error naming each probe that is off. Logs
    // nothing itself, so it can run while the caller still validates input.
    static std::expected<std::unique_ptr<ProbeSet>, std::string> start(ProbeMode mode, const ProbeOptions& options);
    ~ProbeSet();
    ProbeSet(const ProbeSet&) = delete;
    ProbeSet& operator=(const ProbeSet&) = delete;

    bool attached(Probe probe) const;
    bool any_attached() const;
    // Why a probe is off ("" if attached, or not needed).
    const std::string& why_off(Probe probe) const;
    // "vcpu-time on, kernel-exits off (why), ..." for logs.
    std::string summary() const;
    // The one line to log when something is off ("probes off: names (why);
    // ..."), or "" when every wanted probe runs.
    const std::string& notice() const { return notice_; }

    // The filter map: only registered vCPU threads are measured. Register a
    // vCPU thread before its first KVM_RUN, or its first exits are missed.
    std::expected<void, std::string> add_vcpu(pid_t tid, unsigned slot);
    void remove_thread(pid_t tid);
    // Zeroes every counter and histogram: a guest restarted with the same
    // probe set (loading them again costs ~100 ms of its restart) starts
    // counting from 0, as the rest of its telemetry does.
    void reset_counters();
    // A virtio-blk device: its QueueNotify guest-physical address and its
    // GSI (nullopt: no interrupt stage). Its I/O is recognised by the
    // user_data tag (bpf/probe_abi.h) from any thread of this process -- the
    // I/O thread, io-wq workers, an SQPOLL thread -- so no tid is needed.
    std::expected<void, std::string> add_blk_device(unsigned device, uint64_t notify_gpa, std::optional<uint32_t> gsi);

    // Adds the BPF side of vCPU `slot` / blk `device` into a record and sets
    // the VIREO_TELEMETRY_* bits of the probes that are on. Safe from any
    // thread while the probes run.
    void read_vcpu(unsigned slot, vireo_vcpu_telemetry& out) const;
    void read_blk(unsigned device, vireo_blk_telemetry& out) const;

    // Program runs and run time since start (kernel.bpf_stats_enabled=1
    // only; otherwise run_ns is 0): the cost per event of the probes.
    struct Cost {
        uint64_t runs = 0, run_ns = 0;
    };
    Cost cost() const;

private:
    struct Instance;
    ProbeSet();
    void load(const ProbeOptions& options);
    Instance* instance_of(Probe probe) const;

    ProbeOptions options_;
    std::string notice_;
    std::array<std::string, kProbeCount> why_off_;
    std::array<bool, kProbeCount> wanted_{};
    std::array<Instance*, kProbeCount> by_probe_{};  // the instance each probe's programs run in
    std::array<std::unique_ptr<Instance>, kProbeCount> instances_;
};

}  // namespace vireo
