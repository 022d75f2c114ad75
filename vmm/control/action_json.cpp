#include "vmm/control/action_json.h"

#include "vmm/overloaded.h"
#include "vmm/wall_time.h"

namespace vireo {

nlohmann::json to_json(const ControllerLimits& l) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : kControllerLimitFields) j[std::string(f.name)] = l.*f.member;
    return j;
}

nlohmann::json to_json(const GuestControl& c) {
    return {{"mode", c.mode ? std::string(to_string(*c.mode)) : std::string("inherit")},
            {"held", {{"pin", c.pin_held}, {"balloon", c.balloon_held}}}};
}

nlohmann::json to_json(const Action& a) {
    nlohmann::json j{{"kind", std::string(action_name(a.body))}};
    if (!a.guest.empty()) j["guest"] = a.guest;
    std::visit(overloaded{
                   [](const action::Pause&) {},
                   [](const action::Resume&) {},
                   [](const action::Poweroff&) {},
                   [](const action::Restart&) {},
                   [&](const action::Shutdown& s) {
                       if (s.timeout.count()) j["timeout_s"] = double(s.timeout.count()) / 1000.0;
                   },
                   [&](const action::Pin& p) {
                       j["vcpu"] = p.vcpu;
                       j["cpus"] = p.cpus;
                   },
                   [&](const action::Unpin& u) {
                       if (u.vcpu) j["vcpu"] = *u.vcpu;
                   },
                   [&](const action::BalloonTarget& b) { j["target_bytes"] = b.bytes; },
                   [&](const action::ControllerModeSet& m) { j["mode"] = std::string(to_string(m.mode)); },
                   [&](const action::ControllerLimitsSet& l) { j["limits"] = to_json(l.limits); },
                   [&](const action::GuestControlSet& g) { j["control"] = to_json(g.control); },
               },
               a.body);
    return j;
}

nlohmann::json to_json(const ActionRecord& r) {
    nlohmann::json j{{"seq", r.seq},
                     {"time", iso8601(r.time_ns)},
                     {"source", std::string(to_string(r.origin.source))},
                     {"who", r.origin.who},
                     {"reason", r.origin.reason},
                     {"action", to_json(r.action)},
                     {"outcome", std::string(to_string(r.outcome))}};
    if (r.error)
        j["error"] = {{"code", std::string(to_string(r.error->code))}, {"message", r.error->message}};
    nlohmann::json undo = nlohmann::json::array();
    for (const auto& a : r.undo) undo.push_back(to_json(a));
    j["undo"] = std::move(undo);
    j["undoes"] = r.undoes ? nlohmann::json(*r.undoes) : nlohmann::json();
    j["undone_by"] = r.undone_by ? nlohmann::json(*r.undone_by) : nlohmann::json();
    return j;
}

}  // namespace vireo
