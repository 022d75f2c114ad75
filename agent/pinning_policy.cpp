#include "agent/pinning_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "agent/pinning_search.h"
#include "agent/text.h"

namespace vireo::agent {

using pinning::Item;
using pinning::slots_of;

PinningPolicy::PinningPolicy(PinningPolicyParams params) : params_(params) {}

double PinningPolicy::weight(GuestClass c) const {
    return c == GuestClass::LatencySensitive ? params_.weight_latency_sensitive
           : c == GuestClass::Batch          ? params_.weight_batch
                                             : params_.weight_unknown;
}

const WaitModel* PinningPolicy::model(const std::string& guest, unsigned vcpu) const {
    auto it = guests_.find(guest);
    if (it == guests_.end() || vcpu >= it->second.vcpus.size()) return nullptr;
    return &it->second.vcpus[vcpu].model;
}

void PinningPolicy::prepare(const Features& f) {
    by_index_.assign(f.guests.size(), nullptr);
    for (size_t i = 0; i < f.guests.size(); ++i) {
        GuestState& s = guests_[f.guests[i].sample->name];
        if (s.last_seen_ns == 0 || s.vcpus.size() != f.guests[i].vcpus.size())
            s.vcpus.assign(f.guests[i].vcpus.size(), VcpuState{WaitModel(params_.wait_model)});
        s.last_seen_ns = f.now_ns;
        s.co_load.assign(s.vcpus.size(), 0.0);
        by_index_[i] = &s;
    }
    std::erase_if(guests_, [&](const auto& kv) { return kv.second.last_seen_ns != f.now_ns; });

    // Small enough for the whole-placement search? Decided here, on every
    // vCPU that matters, so the models learn with the co-loads that search
    // predicts with (the kernel's filling), and the greedy one's (the even
    // spread) otherwise.
    size_t n = f.host.cpus.size();
    if (n == 0) return;
    size_t relevant = 0;
    for (const auto& g : f.guests)
        for (const auto& v : g.vcpus)
            relevant += g.guest_class == GuestClass::LatencySensitive || v.demand_avg >= params_.search_min_demand;
    small_ = relevant <= params_.exhaustive_max_vcpus && n <= params_.exhaustive_max_cpus &&
             std::pow(double(n + 1), double(relevant)) <= double(params_.exhaustive_max_placements);
    if (small_) {
        std::vector<Item> items;
        for (size_t i = 0; i < f.guests.size(); ++i)
            for (const auto& v : f.guests[i].vcpus) {
                Item it;
                it.demand = v.demand;
                if (v.pinned) it.slots = slots_of(f.host.cpus, v.cpus);
                if (it.slots.size() == n) it.slots.clear();
                items.push_back(std::move(it));
            }
        std::vector<double> co, scratch;
        pinning::filled_co_loads(items, f.host.other_load, params_.kernel_placement_skill, co, scratch);
        size_t k = 0;
        for (size_t i = 0; i < f.guests.size(); ++i)
            for (size_t v = 0; v < f.guests[i].vcpus.size(); ++v) by_index_[i]->co_load[v] = co[k++];
        return;
    }
    // What shared each vCPU's CPUs this tick: the models learn from it.
    std::vector<double> load = f.host.other_load;
    double total = std::accumulate(load.begin(), load.end(), 0.0);
    std::vector<std::vector<std::vector<int>>> slots(f.guests.size());
    for (size_t i = 0; i < f.guests.size(); ++i) {
        for (const auto& v : f.guests[i].vcpus) {
            auto& sl = slots[i].emplace_back(v.pinned ? slots_of(f.host.cpus, v.cpus) : std::vector<int>{});
            if (sl.empty())
                for (auto& l : load) l += v.demand / double(n);
            else
                for (int s : sl) load[size_t(s)] += v.demand / double(sl.size());
            total += v.demand;
        }
    }
    for (size_t i = 0; i < f.guests.size(); ++i) {
        for (size_t v = 0; v < f.guests[i].vcpus.size(); ++v) {
            const auto& sl = slots[i][v];
            double d = f.guests[i].vcpus[v].demand, x;
            if (sl.empty()) {
                x = (total - d) / double(n);
            } else {
                double sum = 0;
                for (int s : sl) sum += load[size_t(s)];
                x = (sum - d) / double(sl.size());
            }
            by_index_[i]->co_load[v] = std::max(0.0, x);
        }
    }
}

void PinningPolicy::observe_guest(const Features& f, size_t i) {
    const GuestFeatures& gf = f.guests[i];
    if (gf.fresh || f.dt_s <= 0) return;
    GuestState& s = *by_index_[i];
    for (size_t v = 0; v < gf.vcpus.size(); ++v) {
        const auto& vf = gf.vcpus[v];
        s.vcpus[v].model.observe(vf.demand, s.co_load[v], !vf.pinned, vf.wait_share);
    }
}

void PinningPolicy::propose(const Features& f, const PolicyScope& scope, std::vector<Proposal>& out) {
    stats_ = {};
    size_t n = f.host.cpus.size();
    if (n == 0 || f.dt_s <= 0) return;
    double now_s = double(f.now_ns) * 1e-9;
    std::vector<Item> items = collect(f, scope, now_s);
    if (std::none_of(items.begin(), items.end(), [](const Item& it) { return it.movable; })) return;

    const std::vector<Item> initial = items;  // where each vCPU is (or is planned to be) now
    stats_.exhaustive = small_;  // the movable vCPUs are a subset of what prepare() counted
    // The host's own work per CPU, on average (features.h says why not per
    // CPU); its unpinned work moves to where there is room anyway.
    pinning::Plan plan = pinning::search(items, n, f.host.other_load, f.host.other_load_per_cpu, small_, params_, stats_);
    for (size_t i : plan.movers) {
        const Item& it = items[i];
        VcpuState& moved = by_index_[it.guest]->vcpus[it.pos];
        moved.last_move_s = now_s;
        moved.pending = it.slots.empty() ? std::vector<unsigned>{} : std::vector<unsigned>{f.host.cpus[size_t(it.slots[0])]};
        out.push_back(explain(f, initial[i], it, i, plan));
    }
}

// Every vCPU as the search sees it: its demand, weight and model, where it
// is (or where a move not yet applied puts it), and whether it may move now.
std::vector<Item> PinningPolicy::collect(const Features& f, const PolicyScope& scope, double now_s) {
    size_t n = f.host.cpus.size();
    std::vector<Item> items;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestFeatures& gf = f.guests[i];
        bool guest_may = scope.may_pin[i] && !gf.fresh && gf.age_s >= params_.warmup_s;
        bool ls = gf.guest_class == GuestClass::LatencySensitive;
        for (size_t v = 0; v < gf.vcpus.size(); ++v) {
            const auto& vf = gf.vcpus[v];
            Item it;
            it.guest = i;
            it.pos = v;
            it.demand = vf.demand_avg;
            it.weight = weight(gf.guest_class);
            double ref = params_.latency_sensitive_reference_demand;
            if (ls && ref > 0) it.weight *= ref / std::max(it.demand, ref / 10);
            it.sigmas = ls ? params_.latency_sensitive_sigmas : 0.0;
            it.model = &by_index_[i]->vcpus[v].model;
            VcpuState& state = by_index_[i]->vcpus[v];
            std::vector<unsigned> now_on = vf.pinned ? vf.cpus : std::vector<unsigned>{};
            if (state.pending && (*state.pending == now_on || now_s - state.last_move_s > params_.pending_timeout_s))
                state.pending.reset();  // applied, or it never will be
            const std::vector<unsigned>& planned = state.pending ? *state.pending : now_on;
            if (!planned.empty()) {
                it.slots = slots_of(f.host.cpus, planned);
                if (it.slots.size() == n) it.slots.clear();  // pinned to every CPU: as good as unpinned
            }
            it.movable = guest_may && now_s - state.last_move_s >= double(scope.limits.pin_interval_s) &&
                         (ls || it.demand >= params_.search_min_demand);
            items.push_back(std::move(it));
        }
    }
    return items;
}

// One move as a proposal: what the vCPU is, where it goes and why, with
// the whole plan's prediction.
Proposal PinningPolicy::explain(const Features& f, const Item& from, const Item& to, size_t i, const pinning::Plan& plan) const {
    auto where = [&](const std::vector<int>& slots) {
        return slots.empty() ? std::string("unpinned")
               : slots.size() == 1 ? strfmt("CPU %u", f.host.cpus[size_t(slots[0])])
                                   : strfmt("%zu CPUs", slots.size());
    };
    std::string search = strfmt("%s search, %zu placements costed, %zu move%s", stats_.exhaustive ? "whole-placement" : "greedy",
                                stats_.placements, plan.movers.size(), plan.movers.size() == 1 ? "" : "s");
    const GuestFeatures& gf = f.guests[to.guest];
    const VcpuFeatures& vf = gf.vcpus[to.pos];
    std::string reason = strfmt(
        "vCPU %u (%s%s, demand %.2f, measured wait %.1f %%): %s with co-load %.2f -> %s with co-load %.2f (%s)", vf.index,
        std::string(to_string(gf.guest_class)).c_str(), gf.class_inferred ? " inferred" : "", to.demand, vf.wait_share * 100,
        where(from.slots).c_str(), plan.co_before[i], where(to.slots).c_str(), plan.co_after[i], search.c_str());
    std::string prediction =
        strfmt("its run-queue wait %.2f %% -> %.2f %% of its time; weighted wait of the vCPUs the plan affects %.4f -> %.4f",
               plan.wait_before[i] * 100, plan.wait_after[i] * 100, plan.cost_before, plan.cost_after);
    ActionBody body = to.slots.empty() ? ActionBody{action::Unpin{vf.index}}
                                       : ActionBody{action::Pin{vf.index, {f.host.cpus[size_t(to.slots[0])]}}};
    return {to.guest, std::move(body), std::move(reason), std::move(prediction)};
}

}  // namespace vireo::agent
