#include "agent/baselines.h"

#include <algorithm>

#include "agent/text.h"

namespace vireo::agent {

void RoundRobinPinning::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    if (f.host.cpus.empty()) return;
    size_t k = 0;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        for (const auto& v : f.guests[i].vcpus) {
            unsigned cpu = f.host.cpus[k++ % f.host.cpus.size()];
            if (!scope.may_pin[i] || (v.pinned && v.cpus == std::vector<unsigned>{cpu})) continue;
            out.push_back({i, action::Pin{v.index, {cpu}}, strfmt("static round-robin: host vCPU %zu -> CPU %u", k - 1, cpu),
                           "none (fixed policy)"});
        }
    }
}

void FixedBalloon::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestSample& g = *f.guests[i].sample;
        if (!scope.may_balloon[i] || !g.balloon) continue;
        uint64_t want = uint64_t(share_ * double(g.ram_bytes));
        if (g.balloon->target_bytes != want)
            out.push_back({i, action::BalloonTarget{want}, strfmt("fixed target: %.0f %% of RAM", share_ * 100),
                           "none (fixed policy)"});
    }
}

void MomBalloon::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    bool host_pressure = f.host.mem_available_fraction < params_.host_free_threshold;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestFeatures& gf = f.guests[i];
        const GuestSample& g = *gf.sample;
        if (!scope.may_balloon[i] || !g.balloon || !gf.available_bytes || g.ram_bytes == 0) continue;
        double guest_free = double(*gf.available_bytes) / double(g.ram_bytes);
        uint64_t step = uint64_t(params_.step * double(g.ram_bytes)), target = g.balloon->target_bytes;
        if (host_pressure && guest_free > params_.guest_free_keep) {
            out.push_back({i, action::BalloonTarget{std::min(g.ram_bytes, target + step)},
                           strfmt("MoM: host free %.0f %% < %.0f %%, guest free %.0f %% > %.0f %%: shrink",
                                  f.host.mem_available_fraction * 100, params_.host_free_threshold * 100, guest_free * 100,
                                  params_.guest_free_keep * 100),
                           "none (fixed policy)"});
        } else if (!host_pressure && guest_free < params_.guest_free_keep && target > 0) {
            out.push_back({i, action::BalloonTarget{target > step ? target - step : 0},
                           strfmt("MoM: host free %.0f %%, guest free %.0f %% < %.0f %%: grow",
                                  f.host.mem_available_fraction * 100, guest_free * 100, params_.guest_free_keep * 100),
                           "none (fixed policy)"});
        }
    }
}

}  // namespace vireo::agent
