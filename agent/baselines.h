// Fixed policies the learned ones are measured against (tools/replay),
// behind the same Policy interface so the controller, its limits and the
// simulator treat them exactly alike.
//
// CPU:    NoPinning         leave every vCPU to the kernel's scheduler
//         RoundRobinPinning pin the k-th vCPU of the host to CPU k mod N, once
// Memory: NoBalloon         never inflate
//         FixedBalloon      one target for every guest: a fixed share of its RAM
//         MomBalloon        oVirt MoM's balloon rules: when host free memory is
//                           under 20 %, shrink every guest with more than 20 %
//                           free by 5 % of its RAM; when it is over, grow every
//                           guest with less than 20 % free by 5 %
#pragma once

#include "agent/policy.h"

namespace vireo::agent {

class NoPinning final : public Policy {
public:
    std::string_view name() const override { return "no-pinning"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>&) override {}
};

class RoundRobinPinning final : public Policy {
public:
    std::string_view name() const override { return "round-robin"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;
};

class NoBalloon final : public Policy {
public:
    std::string_view name() const override { return "no-balloon"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>&) override {}
};

class FixedBalloon final : public Policy {
public:
    explicit FixedBalloon(double share_of_ram = 0.25) : share_(share_of_ram) {}
    std::string_view name() const override { return "fixed-target"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

private:
    double share_;
};

struct MomParams {
    double host_free_threshold = 0.20;  // pressure_threshold
    double guest_free_keep = 0.20;      // min_guest_free_percent
    double step = 0.05;                 // max_balloon_change_percent
};

class MomBalloon final : public Policy {
public:
    explicit MomBalloon(MomParams params = {}) : params_(params) {}
    std::string_view name() const override { return "mom-rules"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

private:
    MomParams params_;
};

}  // namespace vireo::agent
