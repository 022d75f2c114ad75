#include "agent/controller.h"

#include <algorithm>

#include "agent/balloon_policy.h"
#include "agent/pinning_policy.h"
#include "agent/text.h"

namespace vireo::agent {

Origin Decision::origin() const {
    return {ActionSource::Controller, policy, prediction.empty() ? reason : reason + "; predicted: " + prediction};
}

Controller::Controller(std::unique_ptr<Policy> cpu_policy, std::unique_ptr<Policy> memory_policy, ParallelFor parallel_for,
                       FeatureParams feature_params)
    : cpu_(std::move(cpu_policy)),
      memory_(std::move(memory_policy)),
      parallel_for_(parallel_for ? std::move(parallel_for) : serial_for()),
      features_(feature_params) {}

Controller Controller::learned(ParallelFor parallel_for) {
    return Controller(std::make_unique<PinningPolicy>(), std::make_unique<BalloonPolicy>(), std::move(parallel_for));
}

namespace {

std::string memory_inputs(const Features& f, const GuestFeatures& g) {
    const GuestSample& s = *g.sample;
    auto opt = [](const std::optional<uint64_t>& v) { return v ? strfmt("%.0f MiB", mib(*v)) : std::string("?"); };
    return strfmt("RAM %.0f MiB, balloon target %.0f MiB actual %.0f MiB, used %s, available %s, major faults %.0f/s, "
                  "swap-in %.1f MiB, host available %.0f %%, host memory PSI some %.1f",
                  mib(s.ram_bytes), mib(s.balloon ? s.balloon->target_bytes : 0), mib(s.balloon ? s.balloon->actual_bytes : 0),
                  opt(g.used_bytes).c_str(), opt(g.available_bytes).c_str(), g.major_faults_per_s, mib(g.swap_in_bytes),
                  f.host.mem_available_fraction * 100, f.host.pressure.memory_some_avg10);
}

std::string cpu_inputs(const Features& f, const GuestFeatures& g, unsigned vcpu) {
    std::string out;
    for (const auto& v : g.vcpus) {
        if (v.index != vcpu) continue;
        out = strfmt("vCPU %u: demand %.2f (avg %.2f), run %.1f %%, wait %.1f %%, halt %.1f %%, %.0f wakes/s, %.0f us/wake; "
                     "host CPUs busy",
                     v.index, v.demand, v.demand_avg, v.run_share * 100, v.wait_share * 100, v.halt_share * 100,
                     v.wakes_per_s, v.wait_per_wake_us);
    }
    for (size_t i = 0; i < f.host.cpus.size(); ++i) out += strfmt(" %u:%.2f", f.host.cpus[i], f.host.busy_share[i]);
    return out;
}

int vcpu_position(const GuestSample& g, unsigned index) {
    for (size_t i = 0; i < g.vcpus.size(); ++i)
        if (g.vcpus[i].index == index) return int(i);
    return -1;
}

}  // namespace

bool Controller::bound(const Features& f, const Proposal& p, GuestLimits& lim, Decision& d) {
    const GuestFeatures& gf = f.guests[p.guest];
    const GuestSample& g = *gf.sample;
    const ControllerLimits& limits = f.snapshot->limits;
    uint64_t now = f.now_ns;
    d.action.guest = g.name;
    d.reason = p.reason;
    d.prediction = p.prediction;
    d.advisory = gf.mode == ControllerMode::Advise;

    if (auto* b = std::get_if<action::BalloonTarget>(&p.body)) {
        if (!g.balloon) return false;
        uint64_t cur = lim.pending_targets.empty() ? g.balloon->target_bytes : lim.pending_targets.back(), next = b->bytes;
        uint64_t floor = limits.balloon_floor_mib << 20;
        uint64_t max_target = g.ram_bytes > floor ? g.ram_bytes - floor : 0;
        if (next > max_target) {
            next = max_target;
            d.reason += strfmt(" [capped to leave the %llu MiB floor]", (unsigned long long)limits.balloon_floor_mib);
            ++counters_.clamped_by_floor;
        }
        if (next == cur) return false;
        // Giving memory back is never limited (apply() exempts it
        // too): it goes at once and whole. Reclaim is paced by the step and
        // the interval, which a give-back restarts as apply() does.
        if (next > cur) {
            uint64_t step = g.ram_bytes * limits.balloon_step_percent / 100;
            if (next - cur > step) {
                next = cur + step;
                d.reason += strfmt(" [cut to the %llu %% step]", (unsigned long long)limits.balloon_step_percent);
                ++counters_.clamped_by_step;
            }
            if (next == cur) return false;
            if (lim.balloon_changed && now - lim.last_balloon_change_ns < uint64_t(limits.balloon_interval_s) * 1'000'000'000ull) {
                ++counters_.deferred_by_interval;
                return false;
            }
        }
        lim.balloon_changed = true;
        lim.last_balloon_change_ns = now;
        lim.pending_targets.push_back(next);
        d.action.body = action::BalloonTarget{next};
        d.policy = std::string(memory_->name());
        d.inputs = memory_inputs(f, gf);
        return true;
    }

    std::optional<unsigned> vcpu;
    if (auto* pin = std::get_if<action::Pin>(&p.body)) vcpu = pin->vcpu;
    if (auto* unpin = std::get_if<action::Unpin>(&p.body)) vcpu = unpin->vcpu;
    if (!vcpu) return false;  // policies propose one vCPU at a time
    int pos = vcpu_position(g, *vcpu);
    if (pos < 0) return false;
    uint64_t& last = lim.last_pin_ns[size_t(pos)];
    if (last != 0 && now - last < uint64_t(limits.pin_interval_s) * 1'000'000'000ull) {
        ++counters_.deferred_by_interval;
        return false;
    }
    last = std::max<uint64_t>(now, 1);
    d.action.body = p.body;
    d.policy = std::string(cpu_->name());
    d.inputs = cpu_inputs(f, gf, *vcpu);
    return true;
}

Decisions Controller::tick(const Snapshot& snapshot) {
    ++counters_.ticks;
    Features f = features_.update(snapshot);

    // Learn: shared set-up serially, then each guest's models on their own.
    cpu_->prepare(f);
    memory_->prepare(f);
    parallel_for_(f.guests.size(), [&](size_t i) {
        cpu_->observe_guest(f, i);
        memory_->observe_guest(f, i);
    });

    // Who may be acted on, and the limit bookkeeping per guest.
    PolicyScope scope;
    scope.limits = snapshot.limits;
    std::vector<GuestLimits*> lims(f.guests.size());
    bool any = false;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestFeatures& gf = f.guests[i];
        const GuestSample& g = *gf.sample;
        bool on = gf.mode != ControllerMode::Off;
        scope.may_pin.push_back(on && !g.control.pin_held);
        scope.may_balloon.push_back(on && !g.control.balloon_held && g.balloon.has_value());
        any |= on;
        GuestLimits& lim = limits_[g.name];
        if (lim.last_seen_ns == 0 || lim.last_pin_ns.size() != g.vcpus.size()) {
            lim = GuestLimits{};
            lim.last_pin_ns.assign(g.vcpus.size(), 0);
            if (g.balloon) lim.last_target_seen = g.balloon->target_bytes;
        }
        // A target we did not set (an administrator's) restarts the interval, as apply() counts it.
        if (g.balloon && g.balloon->target_bytes != lim.last_target_seen) {
            auto ours = std::find(lim.pending_targets.begin(), lim.pending_targets.end(), g.balloon->target_bytes);
            if (ours == lim.pending_targets.end()) {
                lim.balloon_changed = true;
                lim.last_balloon_change_ns = snapshot.timestamp_ns;
                lim.pending_targets.clear();
            } else {
                lim.pending_targets.erase(lim.pending_targets.begin(), ours + 1);  // applied in order
            }
            lim.last_target_seen = g.balloon->target_bytes;
        }
        // Refused or advised (not seen in time), or no balloon any more: no longer pending.
        constexpr uint64_t kPendingNs = 5'000'000'000ull;
        if (!g.balloon || snapshot.timestamp_ns - lim.last_balloon_change_ns > kPendingNs) lim.pending_targets.clear();
        lim.last_seen_ns = std::max<uint64_t>(snapshot.timestamp_ns, 1);
        lims[i] = &lim;
    }
    std::erase_if(limits_, [&](const auto& kv) { return kv.second.last_seen_ns != std::max<uint64_t>(snapshot.timestamp_ns, 1); });
    if (!any) return {};

    std::vector<Proposal> proposals;
    cpu_->propose(f, scope, proposals);
    memory_->propose(f, scope, proposals);

    Decisions out;
    for (const Proposal& p : proposals) {
        bool balloon = std::holds_alternative<action::BalloonTarget>(p.body);
        if (p.guest >= f.guests.size() || !(balloon ? scope.may_balloon[p.guest] : scope.may_pin[p.guest])) {
            ++counters_.held_or_off;  // a policy that ignored its scope
            continue;
        }
        Decision d;
        if (!bound(f, p, *lims[p.guest], d)) continue;
        ++counters_.decisions;
        counters_.advisory += d.advisory;
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace vireo::agent
