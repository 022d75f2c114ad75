/* Hard limits on what the learned controller may do, in one place: the
 * fields (name and bound; the defaults are ControllerLimits' initialisers,
 * what each means is said beside it) that the config file, the control
 * protocol, the decision log, the agent's traces and the metrics all spell
 * from this table, and the checks that the actuator and the agent's
 * simulator both apply, so the simulator refuses exactly what vireo would.
 *
 * Administrators are not limited by them. The actuator enforces them on
 * every controller action, so a buggy or mistrained policy cannot cross
 * them; each hit is logged and counted. Giving memory back (a lower balloon
 * target) is never limited: a guest under pressure gets it at once; the
 * limits pace reclaim only.
 */
#ifndef VIREO_CONTROLLER_LIMITS_H
#define VIREO_CONTROLLER_LIMITS_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vireo {

struct ControllerLimits {
    uint64_t balloon_step_percent = 5;  // max target change per action, % of guest RAM
    uint64_t balloon_interval_s = 10;   // min time between two target changes of one guest
    uint64_t balloon_floor_mib = 64;    // RAM the balloon always leaves the guest
    uint64_t pin_interval_s = 60;       // min time between two re-pins of one vCPU
    bool operator==(const ControllerLimits&) const = default;
};

// One field: its name everywhere (config key, protocol key, JSON), the
// largest value accepted (0 is always accepted).
struct ControllerLimitField {
    std::string_view name;
    uint64_t ControllerLimits::*member;
    uint64_t max;
};

inline constexpr ControllerLimitField kControllerLimitFields[] = {
    {"balloon_step_percent", &ControllerLimits::balloon_step_percent, 100},
    {"balloon_interval_s", &ControllerLimits::balloon_interval_s, 86400},
    {"balloon_floor_mib", &ControllerLimits::balloon_floor_mib, 1ull << 40},
    {"pin_interval_s", &ControllerLimits::pin_interval_s, 86400},
};

// The names alone, in the table's order (for "unknown key" messages).
inline constexpr auto kControllerLimitNames = [] {
    std::array<std::string_view, std::size(kControllerLimitFields)> names{};
    for (size_t i = 0; i < names.size(); ++i) names[i] = kControllerLimitFields[i].name;
    return names;
}();

inline const ControllerLimitField* find_controller_limit(std::string_view name) {
    for (const auto& f : kControllerLimitFields)
        if (f.name == name) return &f;
    return nullptr;
}

// A limit a controller action would cross: which one, and why.
struct LimitHit {
    std::string_view limit;  // a field name
    std::string message;
};

// A controller's change of a guest's balloon target from `current` to
// `target` bytes. `since_last_change_s`: seconds since this guest's last
// target change, nullopt if there was none.
inline std::optional<LimitHit> balloon_limit_hit(const ControllerLimits& l, uint64_t ram_bytes, uint64_t current,
                                                 uint64_t target, std::optional<double> since_last_change_s) {
    if (target < current) return std::nullopt;  // giving back
    const uint64_t floor = l.balloon_floor_mib << 20;
    if (target + floor > ram_bytes)
        return LimitHit{"balloon_floor_mib", "target " + std::to_string(target >> 20) + " MiB would leave the guest less than " +
                                                 std::to_string(l.balloon_floor_mib) + " MiB"};
    const uint64_t step = target - current;
    if (step * 100 > l.balloon_step_percent * ram_bytes)
        return LimitHit{"balloon_step_percent", "a step of " + std::to_string(step >> 20) + " MiB is over " +
                                                    std::to_string(l.balloon_step_percent) + "% of " +
                                                    std::to_string(ram_bytes >> 20) + " MiB"};
    if (since_last_change_s && *since_last_change_s < double(l.balloon_interval_s))
        return LimitHit{"balloon_interval_s",
                        "the last change was less than " + std::to_string(l.balloon_interval_s) + " s ago"};
    return std::nullopt;
}

// A controller's re-pin of vCPU `vcpu`. `since_last_pin_s`: seconds since
// that vCPU's last pin change, nullopt if there was none.
inline std::optional<LimitHit> pin_limit_hit(const ControllerLimits& l, unsigned vcpu, std::optional<double> since_last_pin_s) {
    if (since_last_pin_s && *since_last_pin_s < double(l.pin_interval_s))
        return LimitHit{"pin_interval_s", "vCPU " + std::to_string(vcpu) + " was re-pinned less than " +
                                              std::to_string(l.pin_interval_s) + " s ago"};
    return std::nullopt;
}

}  // namespace vireo

#endif
