#include "agent/pinning_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "agent/text.h"

namespace vireo::agent {

namespace {

int slot_of(const std::vector<unsigned>& cpus, unsigned cpu) {
    auto it = std::lower_bound(cpus.begin(), cpus.end(), cpu);
    return it != cpus.end() && *it == cpu ? int(it - cpus.begin()) : -1;
}

std::vector<int> slots_of(const std::vector<unsigned>& host_cpus, const std::vector<unsigned>& cpus) {
    std::vector<int> slots;
    for (unsigned c : cpus)
        if (int s = slot_of(host_cpus, c); s >= 0) slots.push_back(s);
    return slots;
}

// One vCPU as the search sees it.
struct Item {
    size_t guest = 0;
    size_t pos = 0;  // in the guest's vcpus
    double demand = 0;
    double weight = 1;
    double sigmas = 0;
    const WaitModel* model = nullptr;
    std::vector<int> slots;  // empty: every CPU (not pinned)
    bool movable = false;
    bool unpinned() const { return slots.empty(); }
};

// Loads per CPU slot and the cost of each vCPU under them.
class Placement {
public:
    Placement(std::vector<Item>& items, std::vector<double> other_load) : items_(items), load_(std::move(other_load)) {
        for (auto& it : items_) add(it, +1);
        by_slot_.assign(load_.size(), {});
        for (size_t i = 0; i < items_.size(); ++i)
            for (int s : items_[i].slots) by_slot_[size_t(s)].push_back(i);
        mark_.assign(items_.size(), 0);
    }

    double co_load(const Item& it) const {
        if (it.unpinned()) return (total_ - it.demand) / double(load_.size());
        double sum = 0;
        for (int s : it.slots) sum += load_[size_t(s)];
        return (sum - it.demand) / double(it.slots.size());
    }
    double cost(const Item& it) const {
        return it.weight * (it.sigmas > 0 ? it.model->predict_tail(it.demand, co_load(it), it.unpinned(), it.sigmas)
                                          : it.model->predict(it.demand, co_load(it), it.unpinned()));
    }
    double wait(const Item& it) const { return it.model->predict(it.demand, co_load(it), it.unpinned()); }

    // Change in total weighted wait if item i moved to `slots` (empty: unpinned).
    double delta(size_t i, const std::vector<int>& slots, double* before_out) {
        Item& it = items_[i];
        ++stamp_;
        affected_.clear();
        touch(i);
        bool everywhere = it.unpinned() || slots.empty();
        if (everywhere) {
            for (size_t j = 0; j < items_.size(); ++j)
                if (!items_[j].unpinned()) touch(j);
        } else {
            for (int s : it.slots)
                for (size_t j : by_slot_[size_t(s)]) touch(j);
            for (int s : slots)
                for (size_t j : by_slot_[size_t(s)]) touch(j);
        }
        double before = 0, after = 0;
        for (size_t j : affected_) before += cost(items_[j]);
        std::vector<int> old = std::move(it.slots);
        add_slots(old, it.demand, -1);
        it.slots = slots;
        add_slots(it.slots, it.demand, +1);
        for (size_t j : affected_) after += cost(items_[j]);
        add_slots(it.slots, it.demand, -1);
        it.slots = std::move(old);
        add_slots(it.slots, it.demand, +1);
        *before_out = before;
        return after - before;
    }

    void move(size_t i, const std::vector<int>& slots) {
        Item& it = items_[i];
        for (int s : it.slots) std::erase(by_slot_[size_t(s)], i);
        add(it, -1);
        it.slots = slots;
        add(it, +1);
        for (int s : it.slots) by_slot_[size_t(s)].push_back(i);
    }
    double total_cost() const {
        double c = 0;
        for (const auto& it : items_) c += cost(it);
        return c;
    }
    const std::vector<double>& load() const { return load_; }

private:
    void touch(size_t j) {
        if (mark_[j] != stamp_) {
            mark_[j] = stamp_;
            affected_.push_back(j);
        }
    }
    void add(const Item& it, int sign) { add_slots(it.slots, it.demand, sign); }
    void add_slots(const std::vector<int>& slots, double demand, int sign) {
        if (slots.empty()) {
            for (auto& l : load_) l += sign * demand / double(load_.size());
        } else {
            for (int s : slots) load_[size_t(s)] += sign * demand / double(slots.size());
        }
        total_ += sign * demand;
        if (sign < 0 && std::abs(total_) < 1e-12) total_ = 0;
    }

    std::vector<Item>& items_;
    std::vector<double> load_;
    double total_ = 0;
    std::vector<std::vector<size_t>> by_slot_;
    std::vector<uint64_t> mark_;
    uint64_t stamp_ = 0;
    std::vector<size_t> affected_;
};

}  // namespace

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

    // What shared each vCPU's CPUs this tick: the models learn from it.
    size_t n = f.host.cpus.size();
    if (n == 0) return;
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
    size_t n = f.host.cpus.size();
    if (n == 0 || f.dt_s <= 0) return;
    double now_s = double(f.now_ns) * 1e-9;
    std::vector<Item> items;
    bool any_movable = false;
    for (size_t i = 0; i < f.guests.size(); ++i) {
        const GuestFeatures& gf = f.guests[i];
        bool guest_may = scope.may_pin[i] && !gf.fresh && gf.age_s >= params_.warmup_s;
        for (size_t v = 0; v < gf.vcpus.size(); ++v) {
            const auto& vf = gf.vcpus[v];
            Item it;
            it.guest = i;
            it.pos = v;
            it.demand = vf.demand_avg;
            it.weight = weight(gf.guest_class);
            it.sigmas = gf.guest_class == GuestClass::LatencySensitive ? params_.latency_sensitive_sigmas : 0.0;
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
            it.movable = guest_may && now_s - by_index_[i]->vcpus[v].last_move_s >= double(scope.limits.pin_interval_s);
            any_movable |= it.movable;
            items.push_back(std::move(it));
        }
    }
    if (!any_movable) return;

    Placement placement(items, f.host.other_load);
    std::vector<bool> moved(items.size(), false);
    for (unsigned round = 0; round < params_.max_moves_per_tick; ++round) {
        double best_gain = 0;
        size_t best_item = 0;
        std::vector<int> best_slots;
        double best_before = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            const Item& it = items[i];
            if (!it.movable || moved[i]) continue;
            // Candidates: each single CPU, and unpinned.
            for (size_t c = 0; c <= n; ++c) {
                std::vector<int> slots = c < n ? std::vector<int>{int(c)} : std::vector<int>{};
                if (slots == it.slots) continue;
                if (c < n) {
                    bool clash = false;
                    for (const Item& other : items)
                        if (&other != &it && other.guest == it.guest && other.slots == slots)
                            clash = true;
                    if (clash) continue;
                }
                double before = 0;
                double gain = -placement.delta(i, slots, &before);
                if (gain > params_.min_gain && gain > params_.min_relative_gain * before && gain > best_gain) {
                    best_gain = gain;
                    best_item = i;
                    best_slots = std::move(slots);
                    best_before = before;
                }
            }
        }
        if (best_gain <= 0) break;

        Item& it = items[best_item];
        const GuestFeatures& gf = f.guests[it.guest];
        const VcpuFeatures& vf = gf.vcpus[it.pos];
        auto where = [&](const std::vector<int>& slots) {
            return slots.empty() ? std::string("unpinned") : strfmt("CPU %u", f.host.cpus[size_t(slots[0])]);
        };
        double wait_before = placement.wait(it), co_before = placement.co_load(it);
        std::string from = it.slots.empty() ? std::string("unpinned")
                           : it.slots.size() == 1 ? where(it.slots)
                                                  : strfmt("%zu CPUs", it.slots.size());
        placement.move(best_item, best_slots);
        moved[best_item] = true;
        double wait_after = placement.wait(it), co_after = placement.co_load(it);
        VcpuState& moved_state = by_index_[it.guest]->vcpus[it.pos];
        moved_state.last_move_s = now_s;
        moved_state.pending = best_slots.empty() ? std::vector<unsigned>{}
                                                 : std::vector<unsigned>{f.host.cpus[size_t(best_slots[0])]};

        std::string reason = strfmt(
            "vCPU %u (%s%s, demand %.2f, measured wait %.1f %%): %s with co-load %.2f -> %s with co-load %.2f", vf.index,
            std::string(to_string(gf.guest_class)).c_str(), gf.class_inferred ? " inferred" : "", it.demand,
            vf.wait_share * 100, from.c_str(), co_before, where(best_slots).c_str(), co_after);
        std::string prediction =
            strfmt("its run-queue wait %.2f %% -> %.2f %% of its time; weighted wait of the vCPUs it affects %.4f -> %.4f",
                   wait_before * 100, wait_after * 100, best_before, best_before - best_gain);
        ActionBody body = best_slots.empty() ? ActionBody{action::Unpin{vf.index}}
                                             : ActionBody{action::Pin{vf.index, {f.host.cpus[size_t(best_slots[0])]}}};
        out.push_back({it.guest, std::move(body), std::move(reason), std::move(prediction)});
    }
}

}  // namespace vireo::agent
