#include "agent/pinning_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

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

// Each vCPU's co-load in a complete placement, modelling where the kernel
// puts the vCPUs left unpinned: on the least loaded CPUs, filling them up
// to a common level (wake-up balancing), not spread evenly over all -- so a
// vCPU left to the kernel beside two burners pinned together lands on the
// other CPU, and one pinned alone on an idle CPU is not alone once an
// unpinned burner lands beside it.
void filled_co_loads(const std::vector<Item>& items, const std::vector<double>& other_load, double skill,
                     std::vector<double>& co, std::vector<double>& load) {
    size_t n = other_load.size();
    load = other_load;
    double unpinned = 0, total = std::accumulate(other_load.begin(), other_load.end(), 0.0);
    for (const auto& it : items) total += it.demand;
    for (const auto& it : items) {
        if (it.unpinned()) unpinned += it.demand;
        else
            for (int s : it.slots) load[size_t(s)] += it.demand / double(it.slots.size());
    }
    double level = 0;
    if (unpinned > 0 && n > 0) {
        std::vector<double> sorted = load;
        std::sort(sorted.begin(), sorted.end());
        double sum = 0;
        for (size_t k = 1; k <= n; ++k) {
            sum += sorted[k - 1];
            level = (unpinned + sum) / double(k);
            if (k == n || level <= sorted[k]) break;
        }
    }
    co.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        const Item& it = items[i];
        if (it.unpinned()) {
            // The kernel does not always find the emptiest CPU (wake-up
            // balancing sees a stale picture): `skill` of the time it does,
            // the rest it might as well spread evenly.
            double even = n ? (total - it.demand) / double(n) : 0.0;
            co[i] = std::max(0.0, skill * (level - it.demand) + (1 - skill) * even);
        } else {
            double sum = 0;
            for (int s : it.slots) sum += std::max(load[size_t(s)], level);
            co[i] = std::max(0.0, sum / double(it.slots.size()) - it.demand);
        }
    }
}

// The whole-placement search's cost of a complete placement (Placement is
// the greedy search's incremental one, with the even spread).
double whole_cost(const std::vector<Item>& items, const std::vector<double>& other_load, double skill,
                  std::vector<double>& co, std::vector<double>& load) {
    filled_co_loads(items, other_load, skill, co, load);
    double cost = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const Item& it = items[i];
        double w = it.sigmas > 0 ? it.model->predict_tail(it.demand, co[i], it.unpinned(), it.sigmas)
                                 : it.model->predict(it.demand, co[i], it.unpinned());
        cost += it.weight * w;
    }
    return cost;
}

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
        filled_co_loads(items, f.host.other_load, params_.kernel_placement_skill, co, scratch);
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
    std::vector<Item> items;
    bool any_movable = false;
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
            it.movable = guest_may && now_s - by_index_[i]->vcpus[v].last_move_s >= double(scope.limits.pin_interval_s) &&
                         (ls || it.demand >= params_.search_min_demand);
            any_movable |= it.movable;
            items.push_back(std::move(it));
        }
    }
    if (!any_movable) return;

    Placement placement(items, f.host.other_load);
    const std::vector<Item> initial = items;  // where each vCPU is (or is planned to be) now
    // Each vCPU's predicted wait and co-load where it is and where the plan
    // puts it, under the model of the search that made the plan.
    std::vector<double> wait_before(items.size()), co_before(items.size()), wait_after, co_after;

    // The host's own work per CPU, on average (features.h says why not per
    // CPU); its unpinned work moves to where there is room anyway.
    double host_other = f.host.other_load_per_cpu;

    // The hard rules for vCPU i on `slots` (one CPU; empty: unpinned is always allowed).
    auto allowed = [&](size_t i, const std::vector<int>& slots) {
        if (slots.size() != 1) return true;
        double pinned = 0;
        for (size_t j = 0; j < items.size(); ++j) {
            const Item& o = items[j];
            if (j == i || o.unpinned()) continue;
            if (o.guest == items[i].guest && o.slots == slots) return false;  // siblings take turns
            if (std::find(o.slots.begin(), o.slots.end(), slots[0]) != o.slots.end()) pinned += o.demand / double(o.slots.size());
        }
        // Alone, or they fit beside the host's own measured work (other
        // processes, our I/O threads): throughput kept.
        return pinned == 0 || host_other + pinned + items[i].demand <= params_.cpu_capacity;
    };

    std::vector<size_t> movers;  // in the order moved
    double cost_before = 0, cost_after = 0;
    std::vector<size_t> cand;
    for (size_t i = 0; i < items.size(); ++i)
        if (items[i].movable) cand.push_back(i);
    bool exhaustive = small_;  // cand is a subset of what prepare() counted
    stats_.exhaustive = exhaustive;

    if (exhaustive) {
        // Depth first over cand: option 0 stays, 1..n pins to CPU o-1, n+1 unpins.
        std::vector<double> co, scratch;
        cost_before = whole_cost(items, f.host.other_load, params_.kernel_placement_skill, co_before, scratch);
        std::vector<std::vector<int>> stay(cand.size());
        for (size_t k = 0; k < cand.size(); ++k) stay[k] = items[cand[k]].slots;
        auto option = [&](size_t k, size_t o) -> std::optional<std::vector<int>> {
            if (o == 0) return stay[k];
            std::vector<int> slots = o <= n ? std::vector<int>{int(o - 1)} : std::vector<int>{};
            if (slots == stay[k]) return std::nullopt;
            return slots;
        };
        double best_score = cost_before;
        std::vector<size_t> choice(cand.size(), 0), best(cand.size(), 0);
        unsigned max_moves = params_.max_moves_per_tick;
        auto leaf = [&](unsigned moves) {
            ++stats_.placements;
            for (size_t k = 0; k < cand.size(); ++k)
                if (choice[k] != 0 && !allowed(cand[k], items[cand[k]].slots)) return;
            double score = whole_cost(items, f.host.other_load, params_.kernel_placement_skill, co, scratch) + params_.min_gain * moves;
            if (score < best_score - 1e-12) best_score = score, best = choice;
        };
        auto dfs = [&](auto&& self, size_t k, unsigned moves) -> void {
            if (k == cand.size()) return leaf(moves);
            for (size_t o = 0; o <= n + 1; ++o) {
                if (o != 0 && moves >= max_moves) break;
                auto slots = option(k, o);
                if (!slots) continue;
                choice[k] = o;
                if (o != 0) placement.move(cand[k], *slots);
                self(self, k + 1, moves + (o != 0));
                if (o != 0) placement.move(cand[k], stay[k]);
            }
            choice[k] = 0;
        };
        dfs(dfs, 0, 0);
        unsigned moves = unsigned(std::count_if(best.begin(), best.end(), [](size_t o) { return o != 0; }));
        if (moves == 0) return;
        for (size_t k = 0; k < cand.size(); ++k)
            if (best[k] != 0) placement.move(cand[k], *option(k, best[k]));
        cost_after = whole_cost(items, f.host.other_load, params_.kernel_placement_skill, co_after, scratch);
        wait_after.assign(items.size(), 0.0);
        for (size_t i = 0; i < items.size(); ++i) {
            wait_before[i] = initial[i].model->predict(initial[i].demand, co_before[i], initial[i].unpinned());
            wait_after[i] = items[i].model->predict(items[i].demand, co_after[i], items[i].unpinned());
        }
        double gain = cost_before - cost_after;
        if (gain <= params_.min_gain * moves || gain <= params_.min_relative_gain * cost_before) return;  // hysteresis
        for (size_t k = 0; k < cand.size(); ++k)
            if (best[k] != 0) movers.push_back(cand[k]);
    } else {
        for (size_t i = 0; i < items.size(); ++i) {
            wait_before[i] = placement.wait(items[i]);
            co_before[i] = placement.co_load(items[i]);
        }
        // Greedy single moves, best first; a pair move when none gains.
        std::vector<bool> moved(items.size(), false);
        std::vector<std::vector<int>> single(n);
        for (size_t c = 0; c < n; ++c) single[c] = {int(c)};
        for (unsigned round = 0; movers.size() < params_.max_moves_per_tick && round < params_.max_moves_per_tick; ++round) {
            double best_gain = 0;
            size_t best_item = 0;
            std::vector<int> best_slots;
            double best_before = 0;
            for (size_t i : cand) {
                const Item& it = items[i];
                if (moved[i]) continue;
                for (size_t c = 0; c <= n; ++c) {
                    const std::vector<int>& slots = c < n ? single[c] : std::vector<int>{};
                    if (slots == it.slots || !allowed(i, slots)) continue;
                    double before = 0;
                    double gain = -placement.delta(i, slots, &before);
                    ++stats_.placements;
                    if (gain > params_.min_gain && gain > params_.min_relative_gain * before && gain > best_gain) {
                        best_gain = gain;
                        best_item = i;
                        best_slots = slots;
                        best_before = before;
                    }
                }
            }
            if (best_gain > 0) {
                cost_before += best_before;
                cost_after += best_before - best_gain;
                placement.move(best_item, best_slots);
                moved[best_item] = true;
                movers.push_back(best_item);
                continue;
            }
            if (movers.size() + 2 > params_.max_moves_per_tick) break;
            // Pairs among the costliest vCPUs not yet moved.
            std::vector<size_t> top;
            for (size_t i : cand)
                if (!moved[i]) top.push_back(i);
            std::sort(top.begin(), top.end(), [&](size_t a, size_t b) {
                double ca = placement.cost(items[a]), cb = placement.cost(items[b]);
                return ca != cb ? ca > cb : a < b;
            });
            if (top.size() > params_.pair_candidates) top.resize(params_.pair_candidates);
            std::vector<int> by_load(n);
            std::iota(by_load.begin(), by_load.end(), 0);
            std::sort(by_load.begin(), by_load.end(), [&](int a, int b) {
                double la = placement.load()[size_t(a)], lb = placement.load()[size_t(b)];
                return la != lb ? la < lb : a < b;
            });
            by_load.resize(std::min<size_t>(n, params_.pair_cpus));
            auto targets = [&](size_t self, size_t other) {
                std::vector<std::vector<int>> t{{}};
                for (int c : by_load) t.push_back({c});
                if (items[other].slots.size() == 1) t.push_back(items[other].slots);
                std::erase_if(t, [&](const auto& s) { return s == items[self].slots; });
                std::sort(t.begin(), t.end());
                t.erase(std::unique(t.begin(), t.end()), t.end());
                return t;
            };
            double pair_gain = 0, pair_before = 0;
            size_t pa = 0, pb = 0;
            std::vector<int> sa_best, sb_best;
            for (size_t x = 0; x < top.size(); ++x)
                for (size_t y = x + 1; y < top.size(); ++y) {
                    size_t a = top[x], b = top[y];
                    std::vector<int> a_home = items[a].slots, b_home = items[b].slots;
                    for (const auto& sa : targets(a, b)) {
                        for (const auto& sb : targets(b, a)) {
                            double before_a = 0, before_b = 0;
                            ++stats_.placements;
                            // Both at once: a's move, then b's from there (a's new neighbours included).
                            double da = placement.delta(a, sa, &before_a);
                            placement.move(a, sa);
                            bool ok = allowed(b, sb) && allowed(a, sa);
                            double db = ok ? placement.delta(b, sb, &before_b) : 0;
                            if (ok) {
                                placement.move(b, sb);
                                ok = allowed(a, sa);
                                placement.move(b, b_home);
                            }
                            placement.move(a, a_home);
                            if (!ok) continue;
                            double gain = -(da + db), before = before_a + before_b;
                            if (gain > 2 * params_.min_gain && gain > params_.min_relative_gain * before && gain > pair_gain) {
                                pair_gain = gain, pair_before = before, pa = a, pb = b, sa_best = sa, sb_best = sb;
                            }
                        }
                    }
                }
            if (pair_gain <= 0) break;
            cost_before += pair_before;
            cost_after += pair_before - pair_gain;
            placement.move(pa, sa_best);
            placement.move(pb, sb_best);
            moved[pa] = moved[pb] = true;
            movers.push_back(pa);
            movers.push_back(pb);
            ++stats_.pair_moves;
        }
    }

    // The moves, each with the whole plan's prediction.
    auto where = [&](const std::vector<int>& slots) {
        return slots.empty() ? std::string("unpinned")
               : slots.size() == 1 ? strfmt("CPU %u", f.host.cpus[size_t(slots[0])])
                                   : strfmt("%zu CPUs", slots.size());
    };
    std::string plan = strfmt("%s search, %zu placements costed, %zu move%s", exhaustive ? "whole-placement" : "greedy",
                              stats_.placements, movers.size(), movers.size() == 1 ? "" : "s");
    for (size_t i : movers) {
        Item& it = items[i];
        const GuestFeatures& gf = f.guests[it.guest];
        const VcpuFeatures& vf = gf.vcpus[it.pos];
        VcpuState& moved_state = by_index_[it.guest]->vcpus[it.pos];
        moved_state.last_move_s = now_s;
        moved_state.pending = it.slots.empty() ? std::vector<unsigned>{} : std::vector<unsigned>{f.host.cpus[size_t(it.slots[0])]};
        std::string reason = strfmt(
            "vCPU %u (%s%s, demand %.2f, measured wait %.1f %%): %s with co-load %.2f -> %s with co-load %.2f (%s)", vf.index,
            std::string(to_string(gf.guest_class)).c_str(), gf.class_inferred ? " inferred" : "", it.demand,
            vf.wait_share * 100, where(initial[i].slots).c_str(), co_before[i], where(it.slots).c_str(),
            exhaustive ? co_after[i] : placement.co_load(it), plan.c_str());
        std::string prediction =
            strfmt("its run-queue wait %.2f %% -> %.2f %% of its time; weighted wait of the vCPUs the plan affects %.4f -> %.4f",
                   wait_before[i] * 100, (exhaustive ? wait_after[i] : placement.wait(it)) * 100, cost_before, cost_after);
        ActionBody body = it.slots.empty() ? ActionBody{action::Unpin{vf.index}}
                                           : ActionBody{action::Pin{vf.index, {f.host.cpus[size_t(it.slots[0])]}}};
        out.push_back({it.guest, std::move(body), std::move(reason), std::move(prediction)});
    }
}

}  // namespace vireo::agent
