// The search behind the pinning policy (agent/pinning_policy.h): every
// vCPU an Item with its demand, weight and wait model, placed on host CPU
// slots (indexes into the host's CPU list; none: unpinned, the kernel
// places it). search() finds the moves that lower the predicted total
// weighted wait, under the hard rules (siblings take turns, pinned vCPUs
// fit on their CPU), by one of two searches: every placement of the
// movable vCPUs (small problems), or greedy single moves with pair moves
// when none gains.
#pragma once

#include <cstddef>
#include <vector>

#include "agent/pinning_policy.h"
#include "agent/wait_model.h"

namespace vireo::agent::pinning {

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

// The slots of `cpus` in `host_cpus` (sorted); CPUs not there are left out.
std::vector<int> slots_of(const std::vector<unsigned>& host_cpus, const std::vector<unsigned>& cpus);

// Each vCPU's co-load in a complete placement, modelling where the kernel
// puts the vCPUs left unpinned: on the least loaded CPUs, filling them up
// to a common level (wake-up balancing), not spread evenly over all -- so a
// vCPU left to the kernel beside two burners pinned together lands on the
// other CPU, and one pinned alone on an idle CPU is not alone once an
// unpinned burner lands beside it.
void filled_co_loads(const std::vector<Item>& items, const std::vector<double>& other_load, double skill,
                     std::vector<double>& co, std::vector<double>& load);

// What a search chose. `movers`: the items to move, in the order chosen
// (empty: keep everything where it is); the items themselves end where the
// plan puts them. Per item, the predicted wait and co-load before and
// after, and the weighted wait of the vCPUs the plan affects.
struct Plan {
    std::vector<size_t> movers;
    double cost_before = 0, cost_after = 0;
    std::vector<double> wait_before, co_before, wait_after, co_after;
};

// `whole`: every placement of the movable items (the caller checked the
// problem is small); else greedy. `cpus`: the number of host CPU slots;
// `other_load`: the host's own work per slot, `other_per_cpu` its average.
Plan search(std::vector<Item>& items, size_t cpus, const std::vector<double>& other_load, double other_per_cpu, bool whole,
            const PinningPolicyParams& params, PinningSearchStats& stats);

}  // namespace vireo::agent::pinning
