// What a CPU or memory policy is to the controller, learned or fixed:
// the controller computes the features, lets each policy learn from them
// (per guest, possibly in parallel), asks it for proposals, and then
// applies the rules every policy is bound by -- the guest's mode, the
// administrator's held levers, the hard limits. So tools/replay can put a
// fixed baseline where the learned policy was and change nothing else.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "agent/features.h"
#include "vireo/actions.h"

namespace vireo::agent {

struct Proposal {
    size_t guest = 0;  // index into Features::guests
    ActionBody body;
    std::string reason;      // why, for a person reading the decision log
    std::string prediction;  // what the policy expects to follow
};

// Which guests a policy may act on this tick and how: the controller fills
// it from modes, held levers and limits, so policies need not repeat them.
struct PolicyScope {
    std::vector<bool> may_pin;      // per guest: not off, pin lever not held
    std::vector<bool> may_balloon;  // per guest: not off, balloon lever not held, has a balloon
    ControllerLimits limits;
};

class Policy {
public:
    virtual ~Policy() = default;
    virtual std::string_view name() const = 0;
    // Serial, once per tick, before observe_guest: set up per-guest state
    // (guests come and go) and whatever is shared across guests.
    virtual void prepare(const Features&) {}
    // Learn from guest i's figures. Called for every guest, possibly at the
    // same time for different guests: touch only guest i's state.
    virtual void observe_guest(const Features&, size_t /*guest*/) {}
    // Serial: what to change.
    virtual void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) = 0;
};

}  // namespace vireo::agent
