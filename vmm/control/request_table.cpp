#include "vmm/control/request_table.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace vireo::control {

namespace {

using json = nlohmann::json;
using G = GuestArg;
using T = FieldType;

std::expected<uint64_t, std::string> whole_number(const std::string& text) {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p != text.data() + text.size() || text.empty())
        return std::unexpected(fmt::format("'{}' is not a whole number", text));
    return n;
}

}  // namespace

const std::vector<RequestSpec>& request_specs() {
    static const std::vector<RequestSpec> specs = {
        {"info", G::None, {}, "vireo's version, pid, uptime, endpoints, guests"},
        {"list", G::None, {}, "every guest with its state"},
        {"pause", G::Required, {}, "pause a guest (its vCPUs stop running)"},
        {"resume", G::Required, {}, "resume a paused guest"},
        {"shutdown",
         G::Required,
         {{"timeout_s", "--timeout", T::Seconds, false, "seconds before the poweroff (default: the guest's shutdown_timeout_s)"}},
         "press the ACPI power button; poweroff after the timeout"},
        {"poweroff", G::Required, {}, "stop a guest at once"},
        {"restart", G::Required, {}, "power a guest off (if running) and boot it again"},
        {"vcpus", G::Required, {}, "vCPU threads: tid, host CPU, pinning, exits, run-queue wait"},
        {"pin",
         G::Required,
         {{"vcpu", "", T::Count, true, "vCPU index"}, {"cpus", "", T::Text, true, "host CPUs, e.g. 1 or 0-1,3"}},
         "pin a vCPU's thread to host CPUs"},
        {"unpin", G::Required, {{"vcpu", "", T::Count, false, "vCPU index (default: all)"}},
         "let a vCPU (or all) run on any allowed CPU again"},
        {"balloon", G::Required, {{"target", "", T::Text, false, "new target, e.g. 128M"}},
         "show the balloon, or set its target (bytes or 512M)"},
        {"disks", G::Required, {}, "the guest's disks and their counters"},
        {"metrics", G::Optional, {}, "every figure vireo has, as JSON", true, "only this guest"},
        {"controller",
         G::Optional,
         {{"mode", "--mode", T::Text, false, "off | advise | auto (per guest also: inherit)"},
          {"limits", "--limit", T::Settings, false, "NAME=VALUE, e.g. balloon_step_percent=5 (repeatable)"},
          {"release", "--release", T::Names, false, "pin | balloon: give the lever back to the controller"},
          {"hold", "--hold", T::Names, false, "pin | balloon: keep the controller off the lever"}},
         "show or set the controller's mode, limits and per-guest overrides",
         false,
         "per-guest: mode override and held levers"},
        {"decisions", G::Optional, {{"limit", "--limit", T::Count, false, "at most this many (default 50)"}},
         "recent actions: who, what, why, outcome", false, "only this guest"},
        {"undo", G::None, {{"seq", "", T::Count, true, "the decision's number (see decisions)"}},
         "apply the inverse of a decision"},
        {"events",
         G::Optional,
         {{"since", "--since", T::Count, false, "replay kept events from this sequence number first"},
          {"types", "--type", T::Names, false, "only these types: state, stop, fault, action, restart, ... (repeatable)"}},
         "follow the event stream (Ctrl-C to stop)",
         false,
         "only this guest's events"},
    };
    return specs;
}

const RequestSpec* find_request_spec(std::string_view name) {
    for (const auto& s : request_specs())
        if (s.name == name) return &s;
    return nullptr;
}

std::expected<json, std::string> build_request(const RequestSpec& spec, const std::string& guest,
                                               const std::map<std::string, std::vector<std::string>>& values) {
    json r = {{"request", std::string(spec.name)}};
    if (!guest.empty()) r["guest"] = guest;
    for (const auto& f : spec.fields) {
        auto it = values.find(std::string(f.key));
        if (it == values.end() || it->second.empty()) {
            if (f.required) return std::unexpected(fmt::format("{}: {} is missing", spec.name, f.key));
            continue;
        }
        const std::vector<std::string>& v = it->second;
        auto bad = [&](const std::string& why) { return std::unexpected(fmt::format("{}: {}: {}", spec.name, f.key, why)); };
        switch (f.type) {
            case T::Count: {
                auto n = whole_number(v.back());
                if (!n) return bad(n.error());
                r[std::string(f.key)] = *n;
                break;
            }
            case T::Seconds: {
                char* end = nullptr;
                double s = std::strtod(v.back().c_str(), &end);
                if (v.back().empty() || *end || !std::isfinite(s) || s < 0)
                    return bad(fmt::format("'{}' is not a number of seconds", v.back()));
                r[std::string(f.key)] = uint64_t(std::ceil(s));
                break;
            }
            case T::Text: r[std::string(f.key)] = v.back(); break;
            case T::Names: r[std::string(f.key)] = v; break;
            case T::Settings: {
                json o = json::object();
                for (const auto& kv : v) {
                    size_t eq = kv.find('=');
                    if (eq == std::string::npos || eq == 0) return bad(fmt::format("'{}': want NAME=VALUE", kv));
                    auto n = whole_number(kv.substr(eq + 1));
                    if (!n) return bad(fmt::format("'{}': {}", kv, n.error()));
                    o[kv.substr(0, eq)] = *n;
                }
                r[std::string(f.key)] = std::move(o);
                break;
            }
        }
    }
    return r;
}

}  // namespace vireo::control
