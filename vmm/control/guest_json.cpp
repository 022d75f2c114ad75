#include "vmm/control/guest_json.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "bpf/telemetry_report.h"
#include "vireo/exit_status.h"
#include "vmm/devices/ib700_watchdog.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/devices/virtio/blk/blk.h"
#include "vmm/metrics/log2_hist.h"
#include "vmm/stop_latch.h"
#include "vmm/thread_stat.h"

namespace vireo {

namespace {
using json = nlohmann::json;

json opt(const std::optional<uint64_t>& v) { return v ? json(*v) : json(); }

json hist_summary(const vireo_hist& h, uint64_t sum_ns, bool with_buckets) {
    json j{{"count", hist_total(h)},
           {"sum_ns", sum_ns},
           {"p50_ns", opt(hist_quantile_ns(h, 0.5))},
           {"p99_ns", opt(hist_quantile_ns(h, 0.99))}};
    if (with_buckets) j["buckets"] = hist_json(h);
    return j;
}

json sources_json(uint32_t s) {
    json a = json::array();
    const std::pair<uint32_t, const char*> names[] = {
        {VIREO_TELEMETRY_VMM_COUNTERS, "vmm-counters"}, {VIREO_TELEMETRY_BINARY_STATS, "binary-stats"},
        {VIREO_TELEMETRY_VCPU_TIME, "vcpu-time"},       {VIREO_TELEMETRY_KERNEL_EXITS, "kernel-exits"},
        {VIREO_TELEMETRY_RUNQUEUE, "runqueue"},         {VIREO_TELEMETRY_BLK, "blk"},
    };
    for (auto [bit, name] : names)
        if (s & bit) a.push_back(name);
    return a;
}
}  // namespace

json hist_json(const vireo_hist& h) {
    json a = json::array();
    for (uint64_t b : h.bucket) a.push_back(b);
    return a;
}

json restart_json(const Guest& g, const Supervision& sup) {
    auto now = std::chrono::steady_clock::now();
    const RestartPolicy& p = g.config().restart;
    json j{{"policy", std::string(to_string(p.mode))},
           {"backoff_initial_s", p.backoff_initial.count() / 1000.0},
           {"backoff_max_s", p.backoff_max.count() / 1000.0},
           {"reset_after_s", p.reset_after.count() / 1000.0},
           {"max_failures", p.max_failures},
           {"window_s", p.failure_window.count() / 1000.0},
           {"failures_in_window", sup.backoff.failures_in_window(now)},
           {"consecutive_restarts", sup.backoff.consecutive_restarts()},
           {"next_delay_s", sup.backoff.next_delay().count() / 1000.0}};
    j["restart_in_s"] = sup.restart_due ? json(std::chrono::duration<double>(*sup.restart_due - now).count()) : json();
    auto latency = g.restart_latency();
    j["last_restart_ms"] = latency ? json(double(latency->count()) / 1e6) : json();
    json by_reason = json::object();
    for (const auto& [reason, n] : sup.restarts_by_reason) by_reason[reason] = n;
    j["restarts_by_reason"] = std::move(by_reason);
    json history = json::array();
    for (const auto& r : sup.history)
        history.push_back({{"time_ns", r.time_ns}, {"reason", r.reason}, {"delay_ms", r.delay_ms}, {"source", r.source}});
    j["history"] = std::move(history);
    const HangSettings& h = g.config().hang;
    j["hang_detection"] = h.enabled ? json{{"min_s", h.min.count() / 1000.0},
                                           {"factor", h.factor},
                                           {"max_s", h.max.count() / 1000.0},
                                           {"learned_quiet_s", sup.hang.learned_quiet(now).count() / 1000.0},
                                           {"threshold_s", sup.hang.threshold(now).count() / 1000.0}}
                                    : json();
    if (const Machine* m = g.machine(); m && m->watchdog())
        j["watchdog"] = {{"armed", m->watchdog()->armed()}, {"feeds", m->watchdog()->pings()}};
    return j;
}

json guest_summary_json(const Guest& g, const Supervision& sup) {
    const auto& m = g.config().machine;
    json j{{"name", g.name()},
           {"state", std::string(to_string(g.state()))},
           {"cpus", m.cpus},
           {"mem_bytes", m.mem_bytes},
           {"kernel", m.kernel},
           {"starts", g.starts()},
           {"restarts", g.restarts()},
           {"restart_policy", std::string(to_string(g.config().restart.mode))}};
    j["class"] = std::string(class_setting(g.config().guest_class));
    j["uptime_s"] = g.live() ? json(std::chrono::duration<double>(std::chrono::steady_clock::now() - g.started_at()).count()) : json();
    if (const auto& s = g.last_stop())
        j["last_stop"] = {{"reason", std::string(to_string(s->reason))}, {"exit_status", exit_status_for(*s)}, {"detail", s->detail}};
    else
        j["last_stop"] = nullptr;
    j["restart"] = restart_json(g, sup);
    j["balloon"] = g.has_balloon() ? json{{"target_bytes", g.balloon_target()}} : json();
    j["disks"] = m.disks.size();
    unsigned pinned = 0;
    for (const auto& p : g.pinning()) pinned += p.has_value();
    j["pinned_vcpus"] = pinned;
    return j;
}

json vcpus_json(Guest& g, const std::optional<Telemetry>& t, bool with_histograms) {
    json out = json::array();
    const Machine* m = g.machine();
    for (unsigned i = 0; i < g.config().machine.cpus; ++i) {
        json v{{"vcpu", i}};
        const VcpuRunner* r = m && i < m->vcpus().size() ? m->vcpus()[i].get() : nullptr;
        pid_t tid = r ? r->tid() : 0;
        v["thread"] = r ? json(r->thread_name()) : json();
        v["tid"] = tid > 0 ? json(tid) : json();
        v["parked"] = r ? r->parked() : false;
        v["pinned"] = g.pinning()[i] ? json(format_cpu_list(*g.pinning()[i])) : json();
        auto st = read_thread_stat(tid);
        v["host_cpu"] = st ? json(st->processor) : json();
        v["thread_state"] = st ? json(std::string(1, st->state)) : json();
        v["cpu_ns"] = st ? json{{"user", st->user_ns}, {"system", st->system_ns}, {"guest", st->guest_ns}} : json();
        auto aff = tid > 0 ? thread_affinity(tid) : std::expected<CpuList, std::string>(std::unexpected(std::string()));
        v["cpus_allowed"] = aff ? json(format_cpu_list(*aff)) : json();
        if (t && i < t->vcpus.size()) {
            const auto& tv = t->vcpus[i];
            v["sources"] = sources_json(tv.sources);
            v["runs"] = tv.vmm_runs;
            json exits = json::object();
            uint64_t total = 0;
            for (unsigned reason = 0; reason < VIREO_UEXIT_REASONS; ++reason)
                if (tv.vmm_exits[reason]) {
                    exits[kvm_exit_name(reason)] = tv.vmm_exits[reason];
                    total += tv.vmm_exits[reason];
                }
            v["exits"] = std::move(exits);
            v["exits_total"] = total;
            if (tv.sources & VIREO_TELEMETRY_VCPU_TIME) {
                v["in_kvm_run_ns"] = tv.in_kvm_run_ns;
                v["kvm_run"] = hist_summary(tv.kvm_run_hist, tv.in_kvm_run_ns, with_histograms);
                uint64_t uexit_ns = 0;
                for (uint64_t ns : tv.uexit_ns) uexit_ns += ns;
                v["userspace_exit"] = hist_summary(tv.uexit_hist, uexit_ns, with_histograms);
            } else {
                v["in_kvm_run_ns"] = nullptr;
            }
            v["runq_wait"] = tv.sources & VIREO_TELEMETRY_RUNQUEUE ? hist_summary(tv.runq_hist, tv.runq_wait_ns, with_histograms) : json();
            if (tv.sources & VIREO_TELEMETRY_BINARY_STATS) {
                v["kvm_exits"] = tv.kvm_exits;
                v["halt_wait"] = hist_summary(tv.halt_wait_hist, tv.halt_wait_ns, with_histograms);
            } else {
                v["kvm_exits"] = nullptr;
                v["halt_wait"] = nullptr;
            }
            bool kexits = (tv.sources & VIREO_TELEMETRY_KERNEL_EXITS) && !(tv.sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT);
            v["kernel_exit"] = kexits ? hist_summary(tv.kexit_hist, tv.kexit_ns, with_histograms) : json();
        }
        out.push_back(std::move(v));
    }
    return out;
}

json balloon_json(Guest& g) {
    if (!g.has_balloon()) return nullptr;
    json j{{"target_bytes", g.balloon_target()}, {"ram_bytes", g.config().machine.mem_bytes}};
    Machine* m = g.machine();
    VirtioBalloon* b = m ? m->balloon() : nullptr;
    if (!b) {
        j["actual_bytes"] = nullptr;
        j["stats"] = nullptr;
        return j;
    }
    j["device_target_bytes"] = uint64_t(b->target_pages()) << balloon::kPfnShift;
    j["actual_bytes"] = uint64_t(b->actual_pages()) << balloon::kPfnShift;
    const auto& c = b->counters();
    j["counters"] = {{"inflated_pages", c.inflated_pages.load()},   {"deflated_pages", c.deflated_pages.load()},
                     {"discarded_bytes", c.discarded_bytes.load()}, {"refused_pfns", c.refused_pfns.load()},
                     {"reported_bytes", c.reported_bytes.load()},   {"stats_updates", c.stats_updates.load()},
                     {"deflate_on_oom_events", c.deflate_on_oom_events.load()},
                     {"deflate_on_oom_pages", c.deflate_on_oom_pages.load()}};
    if (auto s = b->latest_stats()) {
        json stats = json::object();
        for (unsigned t = 0; t < balloon::kStatTags; ++t)
            if (s->values[t]) stats[balloon::stat_name(t)] = *s->values[t];
        j["stats"] = std::move(stats);
        j["stats_age_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - s->received).count();
    } else {
        j["stats"] = nullptr;
    }
    return j;
}

json disks_json(Guest& g, const std::optional<Telemetry>& t) {
    json out = json::array();
    const auto& disks = g.config().machine.disks;
    std::vector<const VirtioBlk*> blks;
    if (const Machine* m = g.machine(); m && m->virtio())
        for (const auto& tr : m->virtio()->transports())
            if (auto* blk = dynamic_cast<const VirtioBlk*>(&tr->device())) blks.push_back(blk);
    for (size_t i = 0; i < disks.size(); ++i) {
        const DiskConfig& d = disks[i];
        json j{{"index", i},          {"path", d.path},   {"read_only", d.read_only}, {"direct", d.direct},
               {"queues", d.queues}, {"queue_size", d.queue_size}};
        struct stat st {};
        j["size_bytes"] = ::stat(d.path.c_str(), &st) == 0 ? json(uint64_t(st.st_size)) : json();
        if (i < blks.size()) {
            const auto& c = blks[i]->counters();
            j["serial"] = blks[i]->image().serial();
            j["counters"] = {{"requests", c.requests.load()},       {"reads", c.reads.load()},
                             {"writes", c.writes.load()},           {"flushes", c.flushes.load()},
                             {"bytes_read", c.bytes_read.load()},   {"bytes_written", c.bytes_written.load()},
                             {"io_errors", c.io_errors.load()},     {"bad_requests", c.bad_requests.load()}};
            j["inflight"] = blks[i]->inflight();
        } else {
            j["serial"] = d.serial.empty() ? json() : json(d.serial);
            j["counters"] = nullptr;
        }
        const vireo_blk_telemetry* bt = nullptr;
        if (t)
            for (const auto& b : t->blk)
                if (b.device == i) bt = &b;
        if (bt && (bt->sources & VIREO_TELEMETRY_BLK))
            j["latency"] = {{"notify_to_submit", hist_summary(bt->notify_to_submit_hist, bt->notify_to_submit_ns, true)},
                            {"submit_to_complete", hist_summary(bt->submit_to_complete_hist, bt->submit_to_complete_ns, true)},
                            {"complete_to_irq", hist_summary(bt->complete_to_irq_hist, bt->complete_to_irq_ns, true)}};
        else
            j["latency"] = nullptr;
        out.push_back(std::move(j));
    }
    return out;
}

}  // namespace vireo
