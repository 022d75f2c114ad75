#include "agent/balloon_policy.h"

#include <algorithm>
#include <cmath>

#include "agent/text.h"

namespace vireo::agent {

BalloonPolicy::BalloonPolicy(BalloonPolicyParams params) : params_(std::move(params)) {}

const EstimatorEnsemble* BalloonPolicy::ensemble(const std::string& guest) const {
    auto it = guests_.find(guest);
    return it == guests_.end() ? nullptr : it->second.ensemble.get();
}

void BalloonPolicy::prepare(const Features& f) {
    by_index_.assign(f.guests.size(), nullptr);
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        GuestState& s = guests_[g.name];
        if (s.last_seen_ns == 0 || s.ram_bytes != g.ram_bytes) {
            s = GuestState{};  // a new guest, or one whose RAM changed: its history says nothing now
            s.ram_bytes = g.ram_bytes;
        }
        s.last_seen_ns = f.now_ns;
        by_index_[i] = &s;
    }
    std::erase_if(guests_, [&](const auto& kv) { return kv.second.last_seen_ns != f.now_ns; });
}

void BalloonPolicy::observe_guest(const Features& f, size_t i) {
    const GuestFeatures& gf = f.guests[i];
    GuestState& s = *by_index_[i];
    double now_s = double(f.now_ns) * 1e-9;
    s.pressure_now = false;
    s.pressure_why.clear();
    if (gf.major_faults_per_s > params_.pressure_major_faults_per_s)
        s.pressure_why = strfmt("%.0f major faults/s", gf.major_faults_per_s);
    if (gf.swap_in_bytes > 0)
        s.pressure_why += strfmt("%s%.1f MiB swapped in", s.pressure_why.empty() ? "" : ", ", mib(gf.swap_in_bytes));
    if (gf.deflate_on_oom > 0)
        s.pressure_why += strfmt("%s%llu deflate-on-OOM", s.pressure_why.empty() ? "" : ", ", (unsigned long long)gf.deflate_on_oom);
    s.pressure_now = !s.pressure_why.empty();
    if (s.pressure_now) s.last_pressure_s = now_s;
    if (!gf.used_bytes || s.ram_bytes == 0) return;
    if (!s.ensemble) {
        s.ensemble = std::make_unique<EstimatorEnsemble>(params_.ensemble, s.ram_bytes);
        s.first_stats_s = now_s;
    }
    s.ensemble->observe(*gf.used_bytes, s.pressure_now, f.dt_s);

    uint64_t used = *gf.used_bytes;
    s.recent_use.emplace_back(now_s, used);
    while (!s.recent_use.empty() && now_s - s.recent_use.front().first > params_.growth_window_s) s.recent_use.pop_front();
    uint64_t low = used;
    for (const auto& [t, u] : s.recent_use) low = std::min(low, u);
    s.growth_max_bytes = std::max(s.growth_max_bytes * std::exp2(-f.dt_s / params_.growth_half_life_s), double(used - low));
}

void BalloonPolicy::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    double now_s = double(f.now_ns) * 1e-9;
    bool host_short = f.host.pressure.memory_some_avg10 >= params_.host_psi_high ||
                      f.host.mem_available_fraction < params_.host_available_low;
    bool host_relaxed = f.host.pressure.memory_some_avg10 < params_.host_psi_low && !host_short;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        if (!scope.may_balloon[i]) continue;
        const GuestFeatures& gf = f.guests[i];
        const GuestSample& g = *gf.sample;
        GuestState& s = *by_index_[i];
        if (!g.balloon || g.ram_bytes == 0) continue;
        uint64_t ram = g.ram_bytes, target = g.balloon->target_bytes;
        uint64_t step = ram * scope.limits.balloon_step_percent / 100;
        uint64_t hard_floor = scope.limits.balloon_floor_mib << 20;
        uint64_t max_target = ram > hard_floor ? ram - hard_floor : 0;
        uint64_t free_floor = std::max({params_.free_floor_min_bytes, uint64_t(params_.free_floor_fraction * double(ram)),
                                        uint64_t(params_.growth_headroom_factor * s.growth_max_bytes)});
        // Giving back is not limited (apply() exempts it): at once, and as
        // much as the guest needs to have its free floor available again --
        // at least one step, since pressure says the estimate was short.
        uint64_t shortfall = 0;
        if (gf.available_bytes && *gf.available_bytes < free_floor) shortfall = free_floor - *gf.available_bytes;
        auto give_back = [&](std::string why) {
            if (target == 0) return;
            uint64_t need = std::max(step, shortfall);
            uint64_t next = target > need ? target - need : 0;
            out.push_back({i, action::BalloonTarget{next}, std::move(why),
                           strfmt("the guest gets %.0f MiB back now (%.0f MiB usable, its free floor %.0f MiB available "
                                  "again), more at once if it stays short",
                                  mib(target - next), mib(ram - next), mib(free_floor))});
        };
        // Give back first: these need no estimate and wait for nothing.
        if (s.pressure_now) {
            give_back("pressure: " + s.pressure_why);
            continue;
        }
        if (shortfall > 0 && host_relaxed) {
            give_back(strfmt("guest low: %.0f MiB available < floor %.0f MiB, host has memory to spare (memory PSI %.1f)",
                             mib(*gf.available_bytes), mib(free_floor), f.host.pressure.memory_some_avg10));
            continue;
        }
        if (!s.ensemble) continue;
        bool warm = now_s - s.first_stats_s >= params_.warmup_s;
        bool cooled = now_s - s.last_pressure_s >= params_.pressure_cooldown_s;
        uint64_t estimate = s.ensemble->estimate();
        if (host_short) free_floor = uint64_t(double(free_floor) * params_.host_short_floor_scale);
        uint64_t keep = std::min(ram, estimate + free_floor);
        uint64_t desired = std::min(ram - keep, max_target);
        uint64_t deadband = std::max<uint64_t>(uint64_t(params_.deadband_fraction * double(ram)), 1);
        if (desired > target && (!warm || !cooled)) continue;  // reclaim only with history and calm
        if ((desired > target ? desired - target : target - desired) < deadband) continue;
        uint64_t next = desired > target ? std::min(desired, target + step) : desired;  // returning: all at once
        const auto& m = s.ensemble->member(s.ensemble->best());
        std::string model = strfmt("estimator %zu/%zu (half-life %.0f s, p%.1f, +%.0f %%)", s.ensemble->best() + 1,
                                   s.ensemble->size(), m.params().half_life_s, m.params().percentile * 100,
                                   m.params().margin * 100);
        std::string why = strfmt("working set %.0f MiB by %s, free floor %.0f MiB%s: %s %.0f MiB", mib(estimate),
                                 model.c_str(), mib(free_floor), host_short ? " (host short of memory: floor halved)" : "",
                                 next > target ? "reclaim" : "return", mib(next > target ? next - target : target - next));
        std::string prediction = strfmt("guest keeps %.0f MiB, %.0f MiB above its estimated need; no pressure expected",
                                        mib(ram - next), mib(ram - next > estimate ? ram - next - estimate : 0));
        out.push_back({i, action::BalloonTarget{next}, std::move(why), std::move(prediction)});
    }
}

}  // namespace vireo::agent
