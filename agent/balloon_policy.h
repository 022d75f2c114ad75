// The learned balloon policy: per guest, an ensemble of working-set
// estimators (agent/estimator_ensemble.h) learns what the guest needs; the
// balloon takes the rest but a free floor.
//
//   target = guest RAM - estimate - free floor
//
// Reclaim moves at most one limit step (5 % of RAM) at a time and not more
// often than the limit interval (10 s) -- the controller enforces both for
// every policy, this one plans with them. Giving back is not limited
// (apply() and the controller exempt it): memory goes back at once,
// sized to the need, when the guest shows pressure (major faults, swap-in)
// or had a deflate-on-OOM (at least one step, or what restores its free
// floor if more), or runs low while the host has memory to spare (what
// restores the floor), or when its estimated need rises (straight to the
// new target); after pressure it does not reclaim again for a while. The
// floor grows with the fastest rise of use the guest has shown: memory must
// be back before a rise like that runs the guest out. When the host itself is
// short (memory PSI, little MemAvailable) the floor shrinks: reclaim harder.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/estimator_ensemble.h"
#include "agent/policy.h"

namespace vireo::agent {

struct BalloonPolicyParams {
    EstimatorEnsembleParams ensemble;
    double free_floor_fraction = 0.10;        // of guest RAM, kept free above the estimate
    uint64_t free_floor_min_bytes = 32ull << 20;
    double warmup_s = 300;                     // no reclaim before this much history
    double pressure_major_faults_per_s = 20;   // above this the guest is short
    double pressure_cooldown_s = 120;          // no reclaim this long after pressure
    double host_psi_high = 10.0;               // memory some avg10 (%): host short
    double host_available_low = 0.10;          // MemAvailable / MemTotal: host short
    double host_psi_low = 1.0;                 // below: the host can give memory back
    double host_short_floor_scale = 0.5;       // the free floor when the host is short
    double deadband_fraction = 0.01;           // of RAM: smaller changes are not worth an action
    // Growth headroom: memory comes back only once the signals show the need
    // (the estimate lags use, the device deflates at its own pace), so the
    // free floor also covers the fastest rise of use
    // seen over growth_window_s, remembered with growth_half_life_s.
    double growth_window_s = 30;
    double growth_half_life_s = 3600;
    double growth_headroom_factor = 1.25;
};

class BalloonPolicy final : public Policy {
public:
    explicit BalloonPolicy(BalloonPolicyParams params = {});
    std::string_view name() const override { return "balloon"; }
    void prepare(const Features&) override;
    void observe_guest(const Features&, size_t guest) override;
    void propose(const Features&, const PolicyScope&, std::vector<Proposal>& out) override;

    // The ensemble of a guest (nullptr before its first usable stats).
    const EstimatorEnsemble* ensemble(const std::string& guest) const;

private:
    struct GuestState {
        uint64_t ram_bytes = 0;
        std::unique_ptr<EstimatorEnsemble> ensemble;
        double first_stats_s = -1;
        double last_pressure_s = -1e18;
        bool pressure_now = false;
        std::deque<std::pair<double, uint64_t>> recent_use;  // (time s, used bytes) over the growth window
        double growth_max_bytes = 0;  // decayed max rise of use within the window
        std::string pressure_why;
        uint64_t last_seen_ns = 0;
    };

    BalloonPolicyParams params_;
    std::unordered_map<std::string, GuestState> guests_;
    std::vector<GuestState*> by_index_;
};

}  // namespace vireo::agent
