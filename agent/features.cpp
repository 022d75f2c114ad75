#include "agent/features.h"

#include <algorithm>
#include <cmath>

namespace vireo::agent {

namespace {

// A counter that went backwards was reset (the guest restarted): no delta.
uint64_t delta(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

double smooth(double avg, double sample, double dt_s, double half_life_s, bool first) {
    if (first) return sample;
    double keep = std::exp2(-dt_s / half_life_s);
    return avg * keep + sample * (1 - keep);
}

// used = total - available. A guest whose balloon has no deflate-on-OOM
// takes the balloon's pages out of its total; with deflate-on-OOM it counts
// them as used. Whatever total keeps of the balloon is not the guest's use.
std::optional<uint64_t> used_memory(const GuestSample& g) {
    if (!g.balloon) return std::nullopt;
    const auto& s = g.balloon->stats;
    auto avail = s.available_memory ? s.available_memory : s.free_memory;
    if (!s.total_memory || !avail) return std::nullopt;
    uint64_t total = *s.total_memory, balloon_in_total = 0;
    if (total + g.balloon->actual_bytes > g.ram_bytes) balloon_in_total = total + g.balloon->actual_bytes - g.ram_bytes;
    uint64_t not_used = *avail + balloon_in_total;
    return total > not_used ? total - not_used : 0;
}

}  // namespace

Features FeatureExtractor::update(const Snapshot& snap) {
    Features f;
    f.snapshot = &snap;
    f.now_ns = snap.timestamp_ns;
    bool first = first_ || snap.timestamp_ns <= last_ns_;
    f.dt_s = first ? 0.0 : double(snap.timestamp_ns - last_ns_) * 1e-9;
    double dt_ns = f.dt_s * 1e9;

    // Host CPUs.
    HostFeatures& h = f.host;
    h.pressure = snap.pressure;
    h.mem_available_fraction =
        snap.host_mem_total_bytes ? double(snap.host_mem_available_bytes) / double(snap.host_mem_total_bytes) : 1.0;
    bool same_cpus = last_cpus_.size() == snap.host_cpus.size();
    for (size_t i = 0; same_cpus && i < last_cpus_.size(); ++i) same_cpus = last_cpus_[i].cpu == snap.host_cpus[i].cpu;
    if (!same_cpus) other_load_.assign(snap.host_cpus.size(), 0.0), other_seen_ = false;
    for (size_t i = 0; i < snap.host_cpus.size(); ++i) {
        h.cpus.push_back(snap.host_cpus[i].cpu);
        double busy = (first || !same_cpus) ? 0.0 : double(delta(snap.host_cpus[i].busy_ns, last_cpus_[i].busy_ns)) / dt_ns;
        h.busy_share.push_back(std::clamp(busy, 0.0, 1.0));
    }
    auto cpu_slot = [&](unsigned cpu) -> int {
        auto it = std::lower_bound(h.cpus.begin(), h.cpus.end(), cpu);
        return it != h.cpus.end() && *it == cpu ? int(it - h.cpus.begin()) : -1;
    };
    std::vector<double> vcpu_run(h.cpus.size(), 0.0);

    // Guests.
    f.guests.reserve(snap.guests.size());
    for (const GuestSample& g : snap.guests) {
        auto [it, inserted] = guests_.try_emplace(g.name);
        GuestHistory& hist = it->second;
        if (inserted) hist.first_seen_ns = snap.timestamp_ns;
        GuestFeatures gf;
        gf.sample = &g;
        gf.mode = effective_mode(snap, g);
        gf.fresh = inserted || first;
        gf.age_s = double(snap.timestamp_ns - std::min(snap.timestamp_ns, hist.first_seen_ns)) * 1e-9;
        gf.used_bytes = used_memory(g);
        if (g.balloon) {
            const auto& s = g.balloon->stats;
            if (s.available_memory) gf.available_bytes = s.available_memory;
            else if (s.free_memory) gf.available_bytes = s.free_memory;
            if (hist.balloon && !gf.fresh) {
                const auto& before = *hist.balloon;
                if (s.major_faults && before.stats.major_faults)
                    gf.major_faults_per_s = double(delta(*s.major_faults, *before.stats.major_faults)) / f.dt_s;
                if (s.swap_in && before.stats.swap_in) gf.swap_in_bytes = delta(*s.swap_in, *before.stats.swap_in);
                gf.deflate_on_oom = delta(g.balloon->deflate_on_oom_events, before.deflate_on_oom_events);
            }
        }
        hist.balloon = g.balloon;

        if (hist.vcpus.size() != g.vcpus.size()) hist.vcpus.assign(g.vcpus.size(), {});
        double halt_sum = 0, run_sum = 0, wakes_sum = 0, demand_sum = 0;
        for (size_t v = 0; v < g.vcpus.size(); ++v) {
            const VcpuSample& s = g.vcpus[v];
            VcpuHistory& vh = hist.vcpus[v];
            VcpuFeatures vf;
            vf.index = s.index;
            vf.pinned = s.pinned_cpus.has_value() && !s.pinned_cpus->empty();
            vf.cpus = vf.pinned ? *s.pinned_cpus : h.cpus;
            bool known = vh.seen && !gf.fresh && dt_ns > 0;
            if (known) {
                double in_run = double(delta(s.in_kvm_run_ns, vh.last.in_kvm_run_ns)) / dt_ns;
                vf.wait_share = std::clamp(double(delta(s.runq_wait_ns, vh.last.runq_wait_ns)) / dt_ns, 0.0, 1.0);
                vf.halt_share = std::clamp(double(delta(s.halt_wait_ns, vh.last.halt_wait_ns)) / dt_ns, 0.0, 1.0);
                vf.run_share = std::clamp(in_run - vf.wait_share - vf.halt_share, 0.0, 1.0);
                uint64_t waits = delta(s.runq_waits, vh.last.runq_waits);
                vf.wakes_per_s = double(waits) / f.dt_s;
                vf.wait_per_wake_us = waits ? double(delta(s.runq_wait_ns, vh.last.runq_wait_ns)) / double(waits) * 1e-3 : 0.0;
                double never_halted = std::clamp(1.0 - vf.halt_share / 0.1, 0.0, 1.0);
                vf.demand = std::clamp(vf.run_share + vf.wait_share * never_halted, 0.0, 1.0);
                vf.demand_avg = smooth(vh.demand_avg, vf.demand, f.dt_s, params_.demand_half_life_s, !vh.demand_known);
                vh.demand_known = true;
                halt_sum += vf.halt_share;
                run_sum += vf.run_share;
                wakes_sum += vf.wakes_per_s;
                demand_sum += vf.demand;
                for (unsigned cpu : vf.cpus)
                    if (int slot = cpu_slot(cpu); slot >= 0) vcpu_run[size_t(slot)] += vf.run_share / double(vf.cpus.size());
            } else {
                vf.demand_avg = vh.demand_avg;
            }
            vh.demand_avg = vf.demand_avg;
            vh.last = s;
            vh.seen = true;
            gf.vcpus.push_back(std::move(vf));
        }

        // The class: configured wins; else how the vCPUs behaved lately.
        if (!g.vcpus.empty() && f.dt_s > 0 && !gf.fresh) {
            double n = double(g.vcpus.size());
            double run_per_wake_us = wakes_sum > 0 ? run_sum / wakes_sum * 1e6 : 1e9;
            bool first_class = !hist.class_seen;
            hist.halt_avg = smooth(hist.halt_avg, halt_sum / n, f.dt_s, params_.class_half_life_s, first_class);
            hist.run_per_wake_avg_us =
                smooth(hist.run_per_wake_avg_us, std::min(run_per_wake_us, 1e7), f.dt_s, params_.class_half_life_s, first_class);
            hist.demand_avg = smooth(hist.demand_avg, demand_sum / n, f.dt_s, params_.class_half_life_s, first_class);
            hist.class_seen = true;
        }
        if (g.configured_class != GuestClass::Unknown) {
            gf.guest_class = g.configured_class;
        } else if (hist.class_seen) {
            gf.class_inferred = true;
            if (hist.halt_avg >= params_.ls_min_halt_share && hist.run_per_wake_avg_us <= params_.ls_max_run_per_wake_us)
                gf.guest_class = GuestClass::LatencySensitive;
            else if (hist.demand_avg >= params_.batch_min_demand)
                gf.guest_class = GuestClass::Batch;
        }
        hist.last_seen_ns = snap.timestamp_ns;
        f.guests.push_back(std::move(gf));
    }
    // Forget guests that are gone, so a new guest of the same name starts afresh.
    std::erase_if(guests_, [&](const auto& kv) { return kv.second.last_seen_ns != snap.timestamp_ns; });

    // Host load that is not our vCPUs (other processes, our own I/O threads).
    double busy_sum = 0, run_sum = 0;
    for (size_t i = 0; i < h.cpus.size(); ++i) {
        double other = std::max(0.0, h.busy_share[i] - vcpu_run[i]);
        if (!first) other_load_[i] = smooth(other_load_[i], other, f.dt_s, params_.demand_half_life_s, false);
        busy_sum += h.busy_share[i];
        run_sum += vcpu_run[i];
    }
    h.other_load = other_load_;
    // From the totals, which are exact, and from the first measurement on
    // (an average rising from 0 would call a busy host idle at first).
    if (!first && same_cpus && !h.cpus.empty()) {
        double per_cpu = std::max(0.0, busy_sum - run_sum) / double(h.cpus.size());
        other_load_per_cpu_ = smooth(other_load_per_cpu_, per_cpu, f.dt_s, params_.demand_half_life_s, !other_seen_);
        other_seen_ = true;
    }
    h.other_load_per_cpu = other_load_per_cpu_;

    last_cpus_ = snap.host_cpus;
    last_ns_ = snap.timestamp_ns;
    first_ = false;
    return f;
}

}  // namespace vireo::agent
