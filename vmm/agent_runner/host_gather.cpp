#include "vmm/agent_runner/host_gather.h"

#include "vmm/actuator/guest_actuator.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/guest.h"
#include "vmm/wall_time.h"

namespace vireo::agent_runner {

namespace {

agent::BalloonStats to_agent_stats(const BalloonStats& s) {
    agent::BalloonStats a;
    a.swap_in = s.values[balloon::kSwapIn];
    a.swap_out = s.values[balloon::kSwapOut];
    a.major_faults = s.values[balloon::kMajorFaults];
    a.minor_faults = s.values[balloon::kMinorFaults];
    a.free_memory = s.values[balloon::kMemFree];
    a.total_memory = s.values[balloon::kMemTotal];
    a.available_memory = s.values[balloon::kMemAvailable];
    a.disk_caches = s.values[balloon::kDiskCaches];
    a.hugetlb_allocations = s.values[balloon::kHugetlbAllocations];
    a.hugetlb_failures = s.values[balloon::kHugetlbFailures];
    return a;
}

}  // namespace

HostPart gather_from_host(const GuestActuator& actuator, const std::vector<std::unique_ptr<Guest>>& guests,
                          const CpuList& allowed) {
    HostPart part;
    agent::Snapshot& s = part.snapshot;
    s.timestamp_ns = monotonic_ns();
    s.mode = actuator.controller_mode();
    s.limits = actuator.controller_limits();
    part.allowed_cpus = allowed;
    for (const auto& gp : guests) {
        Guest& g = *gp;
        part.any_on |= actuator.effective_mode(g.name()) != ControllerMode::Off;
    }
    if (!part.any_on) return part;  // nothing to decide: skip the copying
    for (const auto& gp : guests) {
        Guest& g = *gp;
        Machine* m = g.machine();
        // Only running guests: a stopped, paused or restarting guest has no
        // demand to place, and its counters would only confuse the rates.
        if (!m || g.state() != GuestState::Running) continue;
        agent::GuestSample gs;
        gs.name = g.name();
        gs.ram_bytes = g.config().machine.mem_bytes;
        gs.control = actuator.control(g.name());
        gs.configured_class = g.config().guest_class;
        if (VirtioBalloon* b = m->balloon()) {
            agent::BalloonSample bs;
            bs.target_bytes = g.balloon_target();
            bs.actual_bytes = uint64_t(b->actual_pages()) << balloon::kPfnShift;
            bs.deflate_on_oom_events = b->counters().deflate_on_oom_events.load(std::memory_order_relaxed);
            if (auto st = b->latest_stats()) bs.stats = to_agent_stats(*st);
            gs.balloon = bs;
        }
        Telemetry t = m->telemetry();
        std::vector<bool> bpf;
        for (size_t i = 0; i < g.config().machine.cpus; ++i) {
            agent::VcpuSample v;
            v.index = unsigned(i);
            v.tid = i < m->vcpus().size() ? m->vcpus()[i]->tid() : 0;
            if (i < g.pinning().size() && g.pinning()[i]) v.pinned_cpus = *g.pinning()[i];
            bool runq = false;
            if (i < t.vcpus.size()) {
                const auto& tv = t.vcpus[i];
                for (uint64_t e : tv.vmm_exits) v.exits += e;
                if (tv.sources & VIREO_TELEMETRY_RUNQUEUE) {
                    runq = true;
                    v.runq_waits = tv.runq_waits;
                }
            }
            bpf.push_back(runq);
            gs.vcpus.push_back(std::move(v));
        }
        part.bpf_runq.push_back(std::move(bpf));
        s.guests.push_back(std::move(gs));
    }
    return part;
}

}  // namespace vireo::agent_runner
