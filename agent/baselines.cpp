#include "agent/baselines.h"

#include <algorithm>
#include <cmath>

#include "agent/text.h"

namespace vireo::agent {

namespace {

constexpr const char* kFixed = "none (fixed policy)";

uint64_t splitmix(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The guest's memory now (MoM's balloon_cur, Senpai's limit): RAM - balloon.
double memory_of(const GuestSample& g) { return double(g.ram_bytes) - double(g.balloon ? g.balloon->actual_bytes : 0); }

uint64_t target_for_memory(const GuestSample& g, double memory) {
    double t = double(g.ram_bytes) - std::clamp(memory, 0.0, double(g.ram_bytes));
    return uint64_t(std::llround(t));
}

}  // namespace

void RoundRobinPinning::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    if (f.host.cpus.empty()) return;
    size_t k = 0;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        for (const auto& v : f.guests[i].vcpus) {
            unsigned cpu = f.host.cpus[k++ % f.host.cpus.size()];
            if (!scope.may_pin[i] || (v.pinned && v.cpus == std::vector<unsigned>{cpu})) continue;
            out.push_back({i, action::Pin{v.index, {cpu}}, strfmt("static round-robin: host vCPU %zu -> CPU %u", k - 1, cpu), kFixed});
        }
    }
}

void ClassAwarePinning::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    const size_t n = f.host.cpus.size();
    if (n == 0) return;
    // Static: plan once every guest's class is settled, again only when the guests or their classes change.
    std::string key;
    for (const auto& g : f.guests) {
        if (g.fresh || (g.class_inferred && g.age_s < params_.class_warmup_s) ||
            (g.sample->configured_class == GuestClass::Unknown && !g.class_inferred && g.age_s < params_.class_warmup_s))
            return;
        key += g.sample->name + ":" + std::string(to_string(g.guest_class)) + ";";
    }
    if (key == planned_for_) return;
    planned_for_ = key;
    double others = 0;
    size_t ls_vcpus = 0;
    for (const auto& g : f.guests) {
        if (g.guest_class == GuestClass::LatencySensitive) ls_vcpus += g.vcpus.size();
        else
            for (const auto& v : g.vcpus) others += v.demand_avg;
    }
    size_t pool_min = std::max<size_t>(1, size_t(std::ceil(others / params_.pool_utilisation - 1e-9)));
    size_t exclusive = std::min(ls_vcpus, n > pool_min ? n - pool_min : 0);
    // Exclusive CPUs from the top, the pool below them.
    std::vector<unsigned> pool(f.host.cpus.begin(), f.host.cpus.end() - long(exclusive));
    size_t next_exclusive = n;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestFeatures& g = f.guests[i];
        for (const auto& v : g.vcpus) {
            std::vector<unsigned> cpus = pool;
            std::string why = strfmt("static class-aware: %s vCPU in the shared pool of %zu CPUs",
                                     std::string(to_string(g.guest_class)).c_str(), pool.size());
            if (g.guest_class == GuestClass::LatencySensitive && next_exclusive > n - exclusive) {
                cpus = {f.host.cpus[--next_exclusive]};
                why = strfmt("static class-aware: latency-sensitive vCPU on exclusive CPU %u", cpus[0]);
            }
            bool same = v.pinned ? v.cpus == cpus : cpus.size() == n;
            if (!scope.may_pin[i] || same) continue;
            out.push_back({i, action::Pin{v.index, cpus}, std::move(why), kFixed});
        }
    }
}

void FixedBalloon::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        if (!scope.may_balloon[i] || !g.balloon) continue;
        uint64_t want = uint64_t(share_ * double(g.ram_bytes));
        if (g.balloon->target_bytes != want)
            out.push_back({i, action::BalloonTarget{want}, strfmt("fixed target: %.0f %% of RAM", share_ * 100), kFixed});
    }
}

void MomBalloon::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    double now_s = double(f.now_ns) * 1e-9;
    if (now_s - last_s_ < params_.interval_s) return;
    last_s_ = now_s;
    const MomParams& p = params_;
    double host_free = f.host.mem_available_fraction;
    bool shrink = host_free < p.pressure_threshold;
    double guest_free = host_free <= p.pressure_critical ? host_free - 0.05 : p.min_guest_free_percent * host_free / p.pressure_threshold;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        if (!scope.may_balloon[i] || !g.balloon || g.ram_bytes == 0 || !g.balloon->stats.free_memory) continue;
        double ram = double(g.ram_bytes), cur = memory_of(g), unused = double(*g.balloon->stats.free_memory);
        double used = cur - unused, size;
        if (shrink) {
            size = std::max(cur * (1 - p.max_balloon_change_percent), used + guest_free * cur);
            if (size > cur) continue;
        } else {
            if (cur >= ram) continue;
            size = std::max(std::min(cur * (1 + p.max_balloon_change_percent), ram), used + p.min_guest_free_percent * ram);
        }
        size = std::min(size, ram);
        if (std::abs(size - cur) <= p.min_balloon_change_percent * cur) continue;
        out.push_back({i, action::BalloonTarget{target_for_memory(g, size)},
                       strfmt("MoM balloon.rules: host free %.1f %% %s %.0f %%: %s to %.0f MiB (used %.0f MiB)", host_free * 100,
                              shrink ? "<" : ">=", p.pressure_threshold * 100, shrink ? "shrink" : "grow", size / double(1 << 20),
                              used / double(1 << 20)),
                       kFixed});
    }
}

double IdleTaxBalloon::rho(uint64_t ram_bytes, uint64_t memory_bytes, double active) const {
    double k = 1.0 / (1.0 - params_.tau), f = std::clamp(active, 0.0, 1.0);
    double shares = double(ram_bytes);  // proportional to configured memory
    return shares / (std::max(double(memory_bytes), 1.0) * (f + k * (1 - f)));
}

double IdleTaxBalloon::active_fraction(const std::string& guest) const {
    auto it = active_.find(guest);
    return it == active_.end() ? 1.0 : std::max({it->second.slow, it->second.fast, it->second.last});
}

void IdleTaxBalloon::prepare(const Features& f) {
    double now_s = double(f.now_ns) * 1e-9;
    for (const auto& gf : f.guests) {
        const GuestSample& g = *gf.sample;
        if (!g.balloon || !gf.used_bytes) continue;
        Sampled& s = active_[g.name];
        if (s.seen && now_s < s.next_sample_s) continue;
        double memory = memory_of(g), p = memory > 0 ? std::clamp(double(*gf.used_bytes) / memory, 0.0, 1.0) : 1.0;
        unsigned touched = 0;
        for (unsigned k = 0; k < params_.sample_pages; ++k) touched += double(splitmix(rng_) >> 11) * 0x1.0p-53 < p;
        double sample = double(touched) / double(params_.sample_pages);
        if (!s.seen) s.slow = s.fast = sample;
        s.slow += params_.slow_gain * (sample - s.slow);
        s.fast += params_.fast_gain * (sample - s.fast);
        s.last = sample;
        s.seen = true;
        s.next_sample_s = now_s + params_.sample_period_s;
    }
}

void IdleTaxBalloon::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    double now_s = double(f.now_ns) * 1e-9;
    if (now_s - last_s_ < params_.interval_s) return;
    double host_free = f.host.mem_available_fraction;
    bool reclaim = host_free < params_.min_free, give = host_free > params_.min_free + params_.hysteresis;
    if (!reclaim && !give) return;
    // Min-funding revocation: reclaim from the lowest rho; give back to the highest.
    size_t pick = f.guests.size();
    double best = 0;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        if (!scope.may_balloon[i] || !g.balloon || !f.guests[i].used_bytes) continue;
        if (give && g.balloon->target_bytes == 0) continue;
        double r = rho(g.ram_bytes, uint64_t(memory_of(g)), active_fraction(g.name));
        if (pick == f.guests.size() || (reclaim ? r < best : r > best)) pick = i, best = r;
    }
    if (pick == f.guests.size()) return;
    last_s_ = now_s;
    const GuestSample& g = *f.guests[pick].sample;
    uint64_t step = uint64_t(params_.step * double(g.ram_bytes)), target = g.balloon->target_bytes;
    uint64_t next = reclaim ? std::min(g.ram_bytes, target + step) : (target > step ? target - step : 0);
    out.push_back({pick, action::BalloonTarget{next},
                   strfmt("ESX idle memory tax: host free %.1f %% %s %.0f %%: %s the guest of %s rho %.3g (active %.0f %%)",
                          host_free * 100, reclaim ? "<" : ">", (reclaim ? params_.min_free : params_.min_free + params_.hysteresis) * 100,
                          reclaim ? "reclaim from" : "give back to", reclaim ? "lowest" : "highest", best,
                          active_fraction(g.name) * 100),
                   kFixed});
}

void PsiReclaim::prepare(const Features& f) {
    for (const auto& gf : f.guests) {
        GuestState& s = guests_[gf.sample->name];
        s.last_seen_ns = f.now_ns;
        s.stall_ms += (gf.major_faults_per_s * f.dt_s + double(gf.swap_in_bytes) / 4096.0) * params_.fault_stall_ms;
    }
    std::erase_if(guests_, [&](const auto& kv) { return kv.second.last_seen_ns != f.now_ns; });
}

void PsiReclaim::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    double now_s = double(f.now_ns) * 1e-9;
    const PsiReclaimParams& p = params_;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        GuestState& s = guests_[g.name];
        if (s.interval_start_s < 0) s.interval_start_s = now_s;
        if (now_s - s.interval_start_s < p.interval_s) continue;
        double stall = s.stall_ms;
        s.stall_ms = 0;
        s.interval_start_s = now_s;
        if (!scope.may_balloon[i] || !g.balloon || g.ram_bytes == 0) continue;
        // As Senpai reads memory.high back each time: the limit set now.
        double limit = double(g.ram_bytes) - double(g.balloon->target_bytes), adj;
        if (stall > p.pressure_ms) {
            adj = std::min(p.max_backoff, p.max_backoff * std::pow(stall / p.pressure_ms / p.coeff_backoff, 2));
            limit *= 1 + adj;
        } else {
            adj = std::min(p.max_probe, p.max_probe * std::pow(p.pressure_ms / std::max(stall, 1e-3) / p.coeff_probe, 2));
            limit *= 1 - adj;
        }
        limit = std::clamp(limit, double(scope.limits.balloon_floor_mib << 20), double(g.ram_bytes));
        uint64_t next = target_for_memory(g, limit);
        if (next == g.balloon->target_bytes) continue;
        out.push_back({i, action::BalloonTarget{next},
                       strfmt("Senpai: stall %.1f ms in %.0f s %s target %.0f ms: %s memory %.1f %% to %.0f MiB", stall,
                              p.interval_s, stall > p.pressure_ms ? ">" : "<=", p.pressure_ms,
                              stall > p.pressure_ms ? "back off, grow" : "probe, shrink", adj * 100, limit / double(1 << 20)),
                       kFixed});
    }
}

}  // namespace vireo::agent
