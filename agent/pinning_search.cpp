#include "agent/pinning_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace vireo::agent::pinning {

namespace {

int slot_of(const std::vector<unsigned>& cpus, unsigned cpu) {
    auto it = std::lower_bound(cpus.begin(), cpus.end(), cpu);
    return it != cpus.end() && *it == cpu ? int(it - cpus.begin()) : -1;
}

}  // namespace

std::vector<int> slots_of(const std::vector<unsigned>& host_cpus, const std::vector<unsigned>& cpus) {
    std::vector<int> slots;
    for (unsigned c : cpus)
        if (int s = slot_of(host_cpus, c); s >= 0) slots.push_back(s);
    return slots;
}

namespace {

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


namespace {

// One search over `items`: the hard rules, and the two ways to search.
class Search {
public:
    Search(std::vector<Item>& items, size_t cpus, const std::vector<double>& other_load, double other_per_cpu,
           const PinningPolicyParams& params, PinningSearchStats& stats)
        : items_(items), n_(cpus), other_load_(other_load), other_per_cpu_(other_per_cpu), params_(params), stats_(stats),
          placement_(items, other_load) {
        for (size_t i = 0; i < items_.size(); ++i)
            if (items_[i].movable) cand_.push_back(i);
        single_.resize(n_);
        for (size_t c = 0; c < n_; ++c) single_[c] = {int(c)};
    }

    // Depth first over the movable items: option 0 stays, 1..n pins to
    // CPU o-1, n+1 unpins; the best whole placement (the kernel's filling
    // for the unpinned) within max_moves_per_tick moves wins.
    Plan whole() {
        Plan p;
        const std::vector<Item> initial = items_;
        std::vector<double> co, scratch;
        p.co_before.assign(items_.size(), 0.0);
        p.wait_before.assign(items_.size(), 0.0);
        p.cost_before = whole_cost(items_, other_load_, params_.kernel_placement_skill, p.co_before, scratch);
        std::vector<std::vector<int>> stay(cand_.size());
        for (size_t k = 0; k < cand_.size(); ++k) stay[k] = items_[cand_[k]].slots;
        auto option = [&](size_t k, size_t o) -> std::optional<std::vector<int>> {
            if (o == 0) return stay[k];
            std::vector<int> slots = o <= n_ ? std::vector<int>{int(o - 1)} : std::vector<int>{};
            if (slots == stay[k]) return std::nullopt;
            return slots;
        };
        double best_score = p.cost_before;
        std::vector<size_t> choice(cand_.size(), 0), best(cand_.size(), 0);
        unsigned max_moves = params_.max_moves_per_tick;
        auto leaf = [&](unsigned moves) {
            ++stats_.placements;
            for (size_t k = 0; k < cand_.size(); ++k)
                if (choice[k] != 0 && !allowed(cand_[k], items_[cand_[k]].slots)) return;
            double score = whole_cost(items_, other_load_, params_.kernel_placement_skill, co, scratch) + params_.min_gain * moves;
            if (score < best_score - 1e-12) best_score = score, best = choice;
        };
        auto dfs = [&](auto&& self, size_t k, unsigned moves) -> void {
            if (k == cand_.size()) return leaf(moves);
            for (size_t o = 0; o <= n_ + 1; ++o) {
                if (o != 0 && moves >= max_moves) break;
                auto slots = option(k, o);
                if (!slots) continue;
                choice[k] = o;
                if (o != 0) placement_.move(cand_[k], *slots);
                self(self, k + 1, moves + (o != 0));
                if (o != 0) placement_.move(cand_[k], stay[k]);
            }
            choice[k] = 0;
        };
        dfs(dfs, 0, 0);
        unsigned moves = unsigned(std::count_if(best.begin(), best.end(), [](size_t o) { return o != 0; }));
        if (moves == 0) return p;
        for (size_t k = 0; k < cand_.size(); ++k)
            if (best[k] != 0) placement_.move(cand_[k], *option(k, best[k]));
        p.cost_after = whole_cost(items_, other_load_, params_.kernel_placement_skill, p.co_after, scratch);
        p.wait_after.assign(items_.size(), 0.0);
        for (size_t i = 0; i < items_.size(); ++i) {
            p.wait_before[i] = initial[i].model->predict(initial[i].demand, p.co_before[i], initial[i].unpinned());
            p.wait_after[i] = items_[i].model->predict(items_[i].demand, p.co_after[i], items_[i].unpinned());
        }
        double gain = p.cost_before - p.cost_after;
        if (gain <= params_.min_gain * moves || gain <= params_.min_relative_gain * p.cost_before) return p;  // hysteresis
        for (size_t k = 0; k < cand_.size(); ++k)
            if (best[k] != 0) p.movers.push_back(cand_[k]);
        return p;
    }

    // Greedy single moves, best first; a pair move when none gains (the
    // even spread for the unpinned, costed incrementally).
    Plan greedy() {
        Plan p;
        p.wait_before.resize(items_.size());
        p.co_before.resize(items_.size());
        for (size_t i = 0; i < items_.size(); ++i) {
            p.wait_before[i] = placement_.wait(items_[i]);
            p.co_before[i] = placement_.co_load(items_[i]);
        }
        moved_.assign(items_.size(), false);
        for (unsigned round = 0; p.movers.size() < params_.max_moves_per_tick && round < params_.max_moves_per_tick; ++round) {
            if (best_single(p)) continue;
            if (p.movers.size() + 2 > params_.max_moves_per_tick || !best_pair(p)) break;
        }
        p.wait_after.resize(items_.size());
        p.co_after.resize(items_.size());
        for (size_t i = 0; i < items_.size(); ++i) {
            p.wait_after[i] = placement_.wait(items_[i]);
            p.co_after[i] = placement_.co_load(items_[i]);
        }
        return p;
    }

private:
    // The hard rules for item i on `slots` (one CPU; empty: unpinned is always allowed).
    bool allowed(size_t i, const std::vector<int>& slots) const {
        if (slots.size() != 1) return true;
        double pinned = 0;
        for (size_t j = 0; j < items_.size(); ++j) {
            const Item& o = items_[j];
            if (j == i || o.unpinned()) continue;
            if (o.guest == items_[i].guest && o.slots == slots) return false;  // siblings take turns
            if (std::find(o.slots.begin(), o.slots.end(), slots[0]) != o.slots.end()) pinned += o.demand / double(o.slots.size());
        }
        // Alone, or they fit beside the host's own measured work (other
        // processes, our I/O threads): throughput kept.
        return pinned == 0 || other_per_cpu_ + pinned + items_[i].demand <= params_.cpu_capacity;
    }

    // The single move (one vCPU to one CPU, or unpinned) that gains most; taken if any gains.
    bool best_single(Plan& p) {
        double best_gain = 0;
        size_t best_item = 0;
        std::vector<int> best_slots;
        double best_before = 0;
        for (size_t i : cand_) {
            const Item& it = items_[i];
            if (moved_[i]) continue;
            for (size_t c = 0; c <= n_; ++c) {
                const std::vector<int>& slots = c < n_ ? single_[c] : unpinned_;
                if (slots == it.slots || !allowed(i, slots)) continue;
                double before = 0;
                double gain = -placement_.delta(i, slots, &before);
                ++stats_.placements;
                if (gain > params_.min_gain && gain > params_.min_relative_gain * before && gain > best_gain) {
                    best_gain = gain;
                    best_item = i;
                    best_slots = slots;
                    best_before = before;
                }
            }
        }
        if (best_gain <= 0) return false;
        p.cost_before += best_before;
        p.cost_after += best_before - best_gain;
        placement_.move(best_item, best_slots);
        moved_[best_item] = true;
        p.movers.push_back(best_item);
        return true;
    }

    // Two moves at once among the costliest vCPUs not yet moved, to the
    // least loaded CPUs, unpinned, or each other's place; taken if it gains.
    bool best_pair(Plan& p) {
        std::vector<size_t> top;
        for (size_t i : cand_)
            if (!moved_[i]) top.push_back(i);
        std::sort(top.begin(), top.end(), [&](size_t a, size_t b) {
            double ca = placement_.cost(items_[a]), cb = placement_.cost(items_[b]);
            return ca != cb ? ca > cb : a < b;
        });
        if (top.size() > params_.pair_candidates) top.resize(params_.pair_candidates);
        std::vector<int> by_load(n_);
        std::iota(by_load.begin(), by_load.end(), 0);
        std::sort(by_load.begin(), by_load.end(), [&](int a, int b) {
            double la = placement_.load()[size_t(a)], lb = placement_.load()[size_t(b)];
            return la != lb ? la < lb : a < b;
        });
        by_load.resize(std::min<size_t>(n_, params_.pair_cpus));
        auto targets = [&](size_t self, size_t other) {
            std::vector<std::vector<int>> t{{}};
            for (int c : by_load) t.push_back({c});
            if (items_[other].slots.size() == 1) t.push_back(items_[other].slots);
            std::erase_if(t, [&](const auto& s) { return s == items_[self].slots; });
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
                std::vector<int> a_home = items_[a].slots, b_home = items_[b].slots;
                for (const auto& sa : targets(a, b)) {
                    for (const auto& sb : targets(b, a)) {
                        double before_a = 0, before_b = 0;
                        ++stats_.placements;
                        // Both at once: a's move, then b's from there (a's new neighbours included).
                        double da = placement_.delta(a, sa, &before_a);
                        placement_.move(a, sa);
                        bool ok = allowed(b, sb) && allowed(a, sa);
                        double db = ok ? placement_.delta(b, sb, &before_b) : 0;
                        if (ok) {
                            placement_.move(b, sb);
                            ok = allowed(a, sa);
                            placement_.move(b, b_home);
                        }
                        placement_.move(a, a_home);
                        if (!ok) continue;
                        double gain = -(da + db), before = before_a + before_b;
                        if (gain > 2 * params_.min_gain && gain > params_.min_relative_gain * before && gain > pair_gain) {
                            pair_gain = gain, pair_before = before, pa = a, pb = b, sa_best = sa, sb_best = sb;
                        }
                    }
                }
            }
        if (pair_gain <= 0) return false;
        p.cost_before += pair_before;
        p.cost_after += pair_before - pair_gain;
        placement_.move(pa, sa_best);
        placement_.move(pb, sb_best);
        moved_[pa] = moved_[pb] = true;
        p.movers.push_back(pa);
        p.movers.push_back(pb);
        ++stats_.pair_moves;
        return true;
    }

    std::vector<Item>& items_;
    size_t n_;
    const std::vector<double>& other_load_;
    double other_per_cpu_;
    const PinningPolicyParams& params_;
    PinningSearchStats& stats_;
    Placement placement_;
    std::vector<size_t> cand_;
    std::vector<bool> moved_;
    std::vector<std::vector<int>> single_;  // {c}: pinned to CPU slot c
    const std::vector<int> unpinned_;
};

}  // namespace

Plan search(std::vector<Item>& items, size_t cpus, const std::vector<double>& other_load, double other_per_cpu, bool whole,
            const PinningPolicyParams& params, PinningSearchStats& stats) {
    Search s(items, cpus, other_load, other_per_cpu, params, stats);
    return whole ? s.whole() : s.greedy();
}

}  // namespace vireo::agent::pinning
