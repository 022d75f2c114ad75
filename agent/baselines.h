// Fixed policies the learned ones are measured against (tools/replay),
// behind the same Policy interface so the controller, its limits and the
// simulator treat them exactly alike. Each follows a published rule set,
// named at its class; where the source acts on a signal vireo does not
// have, the comment says what stands in for it.
//
// CPU:    NoPinning           the kernel alone (how well it places is the
//                             simulated host's, swept by tools/replay)
//         RoundRobinPinning   the k-th vCPU of the host on CPU k mod N, once
//         ClassAwarePinning   Kubernetes CPU manager "static" policy
// Memory: NoBalloon           never inflate
//         FixedBalloon        one target for every guest: a share of its RAM
//         MomBalloon          oVirt MoM's balloon.rules
//         IdleTaxBalloon      VMware ESX: idle memory tax, sampled working set
//         PsiReclaim          Meta's TMO / Senpai: reclaim until pressure
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

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

// Kubernetes CPU manager, static policy: latency-sensitive vCPUs (the
// "Guaranteed, integer CPU" pods) get exclusive CPUs, everything else
// shares the rest (the shared pool), where the kernel balances it. Classes
// are the configured ones, else inferred (features.h) once a guest is
// class_warmup_s old; the plan is made once per set of guests and classes
// (static). Exclusive CPUs are handed out, in guest order, while the pool
// keeps room for the others' measured demand (pool >= their demand /
// pool_utilisation, at least one CPU); an LS vCPU that gets none joins the pool.
struct ClassAwareParams {
    double class_warmup_s = 60;
    double pool_utilisation = 0.9;
};

class ClassAwarePinning final : public Policy {
public:
    explicit ClassAwarePinning(ClassAwareParams params = {}) : params_(params) {}
    std::string_view name() const override { return "class-aware"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

private:
    ClassAwareParams params_;
    std::string planned_for_;  // guests and classes the current plan is for
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

// oVirt MoM, doc/balloon.rules, as written (MoM's "balloon_cur" is the
// guest's memory, RAM - balloon; "mem_unused" is the guest's MemFree, so
// its page cache counts as used). Every policy interval:
//   host_free = host free / host total
//   host_free < pressure_threshold: shrink every guest --
//     guest_free = host_free <= pressure_critical ? host_free - 0.05 (make it swap)
//                                                 : min_guest_free * host_free / pressure_threshold
//     size = max(cur * (1 - max_change), cur - mem_unused + guest_free * cur), if <= cur
//   else grow every ballooned guest --
//     size = min(cur * (1 + max_change), RAM), at least cur - mem_unused + min_guest_free * RAM
//   a change of at most min_change of cur is skipped.
struct MomParams {
    double pressure_threshold = 0.20;
    double pressure_critical = 0.05;
    double min_guest_free_percent = 0.20;
    double max_balloon_change_percent = 0.05;
    double min_balloon_change_percent = 0.0025;
    double interval_s = 10;  // MoM's policy interval
};

class MomBalloon final : public Policy {
public:
    explicit MomBalloon(MomParams params = {}) : params_(params) {}
    std::string_view name() const override { return "mom-rules"; }
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

private:
    MomParams params_;
    double last_s_ = -1e18;
};

// VMware ESX Server's idle memory tax (Waldspurger, OSDI 2002). A guest's
// shares-per-page ratio rho = S / (P (f + k (1 - f))), k = 1 / (1 - tau):
// S its shares (proportional to its RAM, ESX's default), P its memory now,
// f its active fraction; idle pages cost k times active ones. f is sampled
// as ESX does: every sample_period_s, sample_pages random pages of the
// guest's memory, f = share touched (here: a page is touched with the
// probability used / memory, drawn from our own generator), smoothed by a
// slow and a fast moving average, f = max(slow, fast, this sample) -- quick
// to rise, slow to fall. When host free memory is under min_free (ESX's
// "high" state boundary), reclaim a step from the guest of lowest rho
// (min-funding revocation); above min_free + hysteresis, give a step back
// to the ballooned guest of highest rho.
struct IdleTaxParams {
    double tau = 0.75;
    double sample_period_s = 30;
    unsigned sample_pages = 100;
    double slow_gain = 0.1, fast_gain = 0.5;
    double min_free = 0.06;
    double hysteresis = 0.02;
    double step = 0.05;  // of the guest's RAM per action
    double interval_s = 10;
    uint64_t seed = 1;
};

class IdleTaxBalloon final : public Policy {
public:
    explicit IdleTaxBalloon(IdleTaxParams params = {}) : params_(params), rng_(params.seed) {}
    std::string_view name() const override { return "esx-idle-tax"; }
    void observe_guest(const Features&, size_t) override {}
    void prepare(const Features&) override;
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

    // rho of a guest of this RAM, memory and active fraction (for tests).
    double rho(uint64_t ram_bytes, uint64_t memory_bytes, double active) const;
    double active_fraction(const std::string& guest) const;

private:
    struct Sampled {
        double slow = 0, fast = 0, last = 0;
        double next_sample_s = 0;
        bool seen = false;
    };
    IdleTaxParams params_;
    uint64_t rng_;
    std::unordered_map<std::string, Sampled> active_;
    double last_s_ = -1e18;
};

// Meta's TMO (ASPLOS 2022) through Senpai's controller (oomd's senpai
// plugin, its defaults): per guest, every interval, the memory stall of
// the last interval against a target of pressure_ms --
//   stall <= target: probe -- limit *= 1 - min(max_probe, max_probe * ((target / stall) / coeff_probe)^2)
//   stall >  target: back off -- limit *= 1 + min(max_backoff, max_backoff * ((stall / target) / coeff_backoff)^2)
// where limit is the guest's memory (RAM - balloon target), read back each
// time as Senpai reads memory.high. A guest reports no
// PSI to the host, so its stall is estimated from what it does report:
// each major fault (a refault or swap-in) stalls it fault_stall_ms.
// Senpai's interval is 6 s; here 10 s, the controller's balloon interval,
// so that no probe is deferred by the hard limits.
struct PsiReclaimParams {
    double interval_s = 10;
    double pressure_ms = 10;
    double max_probe = 0.01, max_backoff = 1.0, coeff_probe = 10, coeff_backoff = 20;
    double fault_stall_ms = 0.1;  // one 4 KiB page-in from SSD
};

class PsiReclaim final : public Policy {
public:
    explicit PsiReclaim(PsiReclaimParams params = {}) : params_(params) {}
    std::string_view name() const override { return "tmo-senpai"; }
    void prepare(const Features&) override;
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

private:
    struct GuestState {
        double stall_ms = 0;  // this interval so far
        double interval_start_s = -1;
        uint64_t last_seen_ns = 0;
    };
    PsiReclaimParams params_;
    std::unordered_map<std::string, GuestState> guests_;
};

}  // namespace vireo::agent
