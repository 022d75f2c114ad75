#include "vmm/metrics/host_metrics.h"

#include <fmt/format.h>

#include "bpf/telemetry_report.h"
#include "vireo/version.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/devices/virtio/blk/blk.h"
#include "vmm/host_view.h"
#include "vmm/metrics/exposition.h"
#include "vmm/security/limits.h"
#include "vmm/thread_stat.h"

namespace vireo {

namespace {

constexpr GuestState kStates[] = {GuestState::Starting, GuestState::Running, GuestState::Paused, GuestState::Stopping,
                                  GuestState::Stopped,  GuestState::Backoff, GuestState::Failed};

double ns_to_s(uint64_t ns) { return double(ns) / 1e9; }

void vcpu_metrics(Exposition& x, const Guest& g, const Machine& m, const vireo_vcpu_telemetry& v) {
    const Exposition::Labels l{{"guest", g.name()}, {"vcpu", std::to_string(v.vcpu)}};
    auto with = [&](std::string k, std::string val) {
        auto r = l;
        r.emplace_back(std::move(k), std::move(val));
        return r;
    };
    x.counter("vireo_vcpu_runs_total", "KVM_RUN calls of the vCPU thread", l, double(v.vmm_runs));
    for (unsigned r = 0; r < VIREO_UEXIT_REASONS; ++r)
        if (v.vmm_exits[r])
            x.counter("vireo_vcpu_exits_total", "exits to vireo (user space) by KVM exit reason", with("reason", kvm_exit_name(r)),
                      double(v.vmm_exits[r]));
    const VcpuRunner* runner = v.vcpu < m.vcpus().size() ? m.vcpus()[v.vcpu].get() : nullptr;
    if (auto st = read_thread_stat(runner ? runner->tid() : 0)) {
        x.gauge("vireo_vcpu_host_cpu", "host CPU the vCPU thread last ran on", l, st->processor);
        x.counter("vireo_vcpu_cpu_seconds_total", "CPU time of the vCPU thread by mode (guest is part of user)",
                  with("mode", "user"), ns_to_s(st->user_ns));
        x.counter("vireo_vcpu_cpu_seconds_total", "CPU time of the vCPU thread by mode (guest is part of user)",
                  with("mode", "system"), ns_to_s(st->system_ns));
        x.counter("vireo_vcpu_cpu_seconds_total", "CPU time of the vCPU thread by mode (guest is part of user)",
                  with("mode", "guest"), ns_to_s(st->guest_ns));
    }
    x.gauge("vireo_vcpu_pinned", "1 if the vCPU thread is pinned to chosen host CPUs", l,
            v.vcpu < g.pinning().size() && g.pinning()[v.vcpu] ? 1 : 0);
    x.gauge("vireo_vcpu_parked", "1 while the vCPU is paused", l, runner && runner->parked() ? 1 : 0);
    if (v.sources & VIREO_TELEMETRY_VCPU_TIME) {
        x.counter("vireo_vcpu_in_kvm_run_seconds_total", "time inside KVM_RUN (eBPF)", l, ns_to_s(v.in_kvm_run_ns));
        x.log2_histogram("vireo_vcpu_kvm_run_seconds", "duration of one KVM_RUN call (eBPF)", l, v.kvm_run_hist,
                         ns_to_s(v.in_kvm_run_ns));
        uint64_t uexit_ns = 0;
        for (uint64_t ns : v.uexit_ns) uexit_ns += ns;
        x.log2_histogram("vireo_vcpu_userspace_exit_seconds", "time vireo spent handling one exit (eBPF)", l, v.uexit_hist,
                         ns_to_s(uexit_ns));
    }
    if (v.sources & VIREO_TELEMETRY_RUNQUEUE)
        x.log2_histogram("vireo_vcpu_runqueue_wait_seconds", "run-queue wait of the vCPU thread, runnable to running (eBPF)", l,
                         v.runq_hist, ns_to_s(v.runq_wait_ns));
    if ((v.sources & VIREO_TELEMETRY_KERNEL_EXITS) && !(v.sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT))
        x.log2_histogram("vireo_vcpu_kernel_exit_seconds", "hardware exit to the next guest entry (eBPF kvm_exit/kvm_entry)", l,
                         v.kexit_hist, ns_to_s(v.kexit_ns));
    if (v.sources & VIREO_TELEMETRY_BINARY_STATS) {
        x.counter("vireo_vcpu_kvm_exits_total", "every hardware exit KVM counted (binary stats)", l, double(v.kvm_exits));
        x.log2_histogram("vireo_vcpu_halt_wait_seconds", "time halted, not polling (KVM binary stats halt_wait_hist)", l,
                         v.halt_wait_hist, ns_to_s(v.halt_wait_ns));
    }
}

void guest_metrics(Exposition& x, Guest& g, const Supervision& sup) {
    const Exposition::Labels l{{"guest", g.name()}};
    for (GuestState s : kStates) {
        auto ls = l;
        ls.emplace_back("state", std::string(to_string(s)));
        x.gauge("vireo_guest_state", "1 for the state the guest is in", ls, g.state() == s ? 1 : 0);
    }
    x.counter("vireo_guest_starts_total", "times the guest was started (first start and restarts)", l, double(g.starts()));
    x.counter("vireo_guest_restarts_total", "times the guest was started again", l, double(g.restarts()));
    for (const auto& [reason, n] : sup.restarts_by_reason) {
        auto ls = l;
        ls.emplace_back("reason", reason);
        x.counter("vireo_guest_restarts_by_reason_total", "restarts by the reason of the stop before them (or who asked)", ls,
                  double(n));
    }
    auto now = std::chrono::steady_clock::now();
    x.gauge("vireo_guest_restart_failures_in_window", "failures that count towards the failed state", l,
            sup.backoff.failures_in_window(now));
    x.gauge("vireo_guest_restart_backoff_seconds", "the back-off the next automatic restart would wait", l,
            sup.backoff.next_delay().count() / 1000.0);
    if (sup.restart_due)
        x.gauge("vireo_guest_restart_due_seconds", "time until the pending restart", l,
                std::chrono::duration<double>(*sup.restart_due - now).count());
    if (auto latency = g.restart_latency())
        x.gauge("vireo_guest_last_restart_seconds", "the last restart: fault detected to the first guest instruction", l,
                double(latency->count()) / 1e9);
    x.gauge("vireo_guest_memory_bytes", "guest RAM as configured", l, double(g.config().machine.mem_bytes));
    x.gauge("vireo_guest_vcpus", "vCPUs as configured", l, g.config().machine.cpus);
    if (g.live())
        x.gauge("vireo_guest_uptime_seconds", "time since the guest (re)started", l,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - g.started_at()).count());
    Machine* m = g.machine();
    if (g.has_balloon()) {
        x.gauge("vireo_balloon_target_bytes", "balloon size asked of the guest", l, double(g.balloon_target()));
        if (VirtioBalloon* b = m ? m->balloon() : nullptr) {
            x.gauge("vireo_balloon_actual_bytes", "balloon size the guest reports holding", l,
                    double(uint64_t(b->actual_pages()) << balloon::kPfnShift));
            x.counter("vireo_balloon_discarded_bytes_total", "guest memory given back to the host", l,
                      double(b->counters().discarded_bytes.load()));
            if (auto s = b->latest_stats())
                for (unsigned t = 0; t < balloon::kStatTags; ++t)
                    if (s->values[t]) {
                        auto ls = l;
                        ls.emplace_back("stat", balloon::stat_name(t));
                        x.gauge("vireo_balloon_guest_stat", "the guest's own memory statistics (virtio-balloon stats queue)", ls,
                                double(*s->values[t]));
                    }
        }
    }
    if (!m) return;
    Telemetry t = m->telemetry();
    for (const auto& v : t.vcpus) vcpu_metrics(x, g, *m, v);
    // Disks: the device's counters and, with the eBPF blk probe, latency.
    std::vector<const VirtioBlk*> blks;
    if (m->virtio())
        for (const auto& tr : m->virtio()->transports())
            if (auto* blk = dynamic_cast<const VirtioBlk*>(&tr->device())) blks.push_back(blk);
    for (size_t i = 0; i < blks.size(); ++i) {
        Exposition::Labels dl{{"guest", g.name()}, {"disk", std::to_string(i)}};
        const auto& c = blks[i]->counters();
        x.counter("vireo_blk_requests_total", "virtio-blk requests", dl, double(c.requests.load()));
        auto op = [&](const char* o) {
            auto r = dl;
            r.emplace_back("op", o);
            return r;
        };
        x.counter("vireo_blk_bytes_total", "virtio-blk bytes moved", op("read"), double(c.bytes_read.load()));
        x.counter("vireo_blk_bytes_total", "virtio-blk bytes moved", op("write"), double(c.bytes_written.load()));
        x.counter("vireo_blk_errors_total", "virtio-blk requests the host failed", dl, double(c.io_errors.load()));
    }
    for (const auto& [limit, n] : guest_limit_hits(m->virtio())) {  // bounds on what the guest controls (ARCHITECTURE.md: the hostile guest)
        auto ll = l;
        ll.emplace_back("limit", limit);
        x.counter("vireo_guest_limit_hits_total", "guest requests that ran into a host-side bound, by bound", ll, double(n));
    }
    for (const auto& b : t.blk) {
        if (!(b.sources & VIREO_TELEMETRY_BLK)) continue;
        Exposition::Labels dl{{"guest", g.name()}, {"disk", std::to_string(b.device)}};
        auto stage = [&](const char* s) {
            auto r = dl;
            r.emplace_back("stage", s);
            return r;
        };
        const char* help = "virtio-blk request latency by stage (eBPF)";
        x.log2_histogram("vireo_blk_latency_seconds", help, stage("notify_to_submit"), b.notify_to_submit_hist,
                         ns_to_s(b.notify_to_submit_ns));
        x.log2_histogram("vireo_blk_latency_seconds", help, stage("submit_to_complete"), b.submit_to_complete_hist,
                         ns_to_s(b.submit_to_complete_ns));
        x.log2_histogram("vireo_blk_latency_seconds", help, stage("complete_to_irq"), b.complete_to_irq_hist,
                         ns_to_s(b.complete_to_irq_ns));
    }
}

}  // namespace

std::string render_metrics(const HostView& host) {
    Exposition x;
    x.gauge("vireo_info", "vireo's version", {{"version", VIREO_VERSION}}, 1);
    x.gauge("vireo_uptime_seconds", "time since vireo started", {},
            std::chrono::duration<double>(std::chrono::steady_clock::now() - host.started()).count());
    for (const auto& g : host.guests()) guest_metrics(x, *g, *host.supervisor().find(g->name()));

    for (auto mode : {ControllerMode::Off, ControllerMode::Advise, ControllerMode::Auto})
        x.gauge("vireo_controller_mode", "1 for the process-wide controller mode", {{"mode", std::string(to_string(mode))}},
                host.actuator().controller_mode() == mode ? 1 : 0);
    for (const auto& [key, n] : host.actuator().action_counts()) {
        const auto& [source, kind, outcome] = key;
        x.counter("vireo_actions_total", "actions through the actuator by source, kind and outcome",
                  {{"source", std::string(to_string(source))}, {"kind", kind}, {"outcome", std::string(to_string(outcome))}},
                  double(n));
    }
    for (const auto& [limit, n] : host.actuator().limit_hits())
        x.counter("vireo_controller_limit_hits_total", "controller actions refused by a hard limit", {{"limit", limit}}, double(n));
    x.counter("vireo_decisions_evicted_total", "decision-log records evicted from the ring", {}, double(host.actuator().decisions().evicted()));
    x.counter("vireo_events_total", "events published on the event bus", {}, double(host.bus().published()));

    EndpointStats ends = host.endpoint_stats();
    if (const auto& c = ends.control) {
        x.gauge("vireo_control_clients", "connected control-socket clients", {}, double(c->clients));
        x.counter("vireo_control_connections_total", "control-socket connections accepted", {}, double(c->accepted));
        x.counter("vireo_control_lines_total", "control-socket lines read", {}, double(c->lines));
        x.counter("vireo_control_refused_total", "control-socket connections refused or cut", {{"reason", "peer_uid"}},
                  double(c->refused_peers));
        x.counter("vireo_control_refused_total", "control-socket connections refused or cut", {{"reason", "full"}},
                  double(c->refused_full));
        x.counter("vireo_control_refused_total", "control-socket connections refused or cut", {{"reason", "too_large"}},
                  double(c->oversize));
        x.counter("vireo_control_dropped_subscribers_total", "event subscribers dropped for not reading", {},
                  double(c->dropped_slow));
        x.counter("vireo_control_requests_total", "control requests answered", {}, double(c->requests));
        for (const auto& [code, n] : c->errors)
            x.counter("vireo_control_errors_total", "control requests answered with an error, by code", {{"code", code}}, double(n));
    }
    if (const auto& m = ends.metrics) {
        x.counter("vireo_metrics_scrapes_total", "metrics scrapes served", {}, double(m->scrapes + 1));
        x.counter("vireo_metrics_refused_total", "metrics connections refused (limit) or bad requests", {},
                  double(m->refused));
    }
    return x.text();
}

}  // namespace vireo
