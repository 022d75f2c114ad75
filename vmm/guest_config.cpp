#include "vmm/guest_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vireo/strict_keys.h"
#include "vmm/cli.h"
#include "vmm/devices/virtio/virtio_config.h"

namespace vireo {

namespace {

using json = nlohmann::json;

// Errors carry their context as they go up: "'cpus': ..." becomes
// "guest 'web': 'cpus': ..." becomes "FILE: guest 'web': 'cpus': ...".
using Err = std::string;

std::expected<void, Err> only_keys(const json& obj, std::span<const std::string_view> keys) {
    if (auto e = first_unknown_key(obj, keys)) return std::unexpected(*e);
    return {};
}
std::expected<void, Err> only_keys(const json& obj, std::initializer_list<std::string_view> keys) {
    return only_keys(obj, std::span(keys.begin(), keys.size()));
}

std::expected<std::string, Err> get_string(const json& v, std::string_view key) {
    if (!v.is_string()) return std::unexpected(fmt::format("'{}' must be a string, not {}", key, v.type_name()));
    return v.get<std::string>();
}

std::expected<bool, Err> get_bool(const json& v, std::string_view key) {
    if (!v.is_boolean()) return std::unexpected(fmt::format("'{}' must be true or false, not {}", key, v.type_name()));
    return v.get<bool>();
}

std::expected<uint64_t, Err> get_uint(const json& v, std::string_view key, uint64_t lo, uint64_t hi) {
    if (!v.is_number_unsigned()) {
        if (v.is_number_integer()) return std::unexpected(fmt::format("'{}' must not be negative", key));
        return std::unexpected(fmt::format("'{}' must be an integer, not {}", key, v.is_number() ? "a fraction" : v.type_name()));
    }
    uint64_t n = v.get<uint64_t>();
    if (n < lo || n > hi) return std::unexpected(fmt::format("'{}' must be between {} and {}, not {}", key, lo, hi, n));
    return n;
}

// Seconds, fractions allowed (short restart policies in tests).
std::expected<std::chrono::milliseconds, Err> get_seconds(const json& v, std::string_view key, double hi) {
    if (!v.is_number()) return std::unexpected(fmt::format("'{}' must be a number of seconds, not {}", key, v.type_name()));
    double s = v.get<double>();
    if (!std::isfinite(s) || s < 0 || s > hi)
        return std::unexpected(fmt::format("'{}' must be between 0 and {} seconds", key, hi));
    return std::chrono::milliseconds(int64_t(std::llround(s * 1000)));
}

std::expected<uint64_t, Err> get_size(const json& v, std::string_view key) {
    if (v.is_string()) {
        auto s = parse_size(v.get<std::string>());
        if (!s) return std::unexpected(fmt::format("'{}': {}", key, s.error()));
        return *s;
    }
    if (v.is_number_unsigned()) return v.get<uint64_t>() << 20;  // a bare number is MiB, as on the command line
    return std::unexpected(fmt::format("'{}' must be a size like \"512M\" or a number of MiB", key));
}

std::expected<CpuList, Err> get_cpus(const json& v, std::string_view key) {
    if (v.is_string()) {
        auto l = parse_cpu_list(v.get<std::string>());
        if (!l) return std::unexpected(fmt::format("'{}': {}", key, l.error()));
        return l;
    }
    if (!v.is_array() || v.empty())
        return std::unexpected(fmt::format("'{}' must be a non-empty array of CPU numbers or a list like \"0-1,3\"", key));
    CpuList out;
    for (const auto& c : v) {
        auto n = get_uint(c, key, 0, kMaxCpus - 1);
        if (!n) return std::unexpected(n.error());
        out.push_back(unsigned(*n));
    }
    return normalize_cpu_list(std::move(out));
}

std::expected<RestartPolicy, Err> parse_restart(const json& v) {
    RestartPolicy p;
    if (v.is_string()) {  // shorthand: "on-failure"
        json o{{"policy", v}};
        return parse_restart(o);
    }
    if (!v.is_object()) return std::unexpected(std::string("'restart' must be a policy name or an object"));
    if (auto r = only_keys(v, {"policy", "backoff_initial_s", "backoff_max_s", "reset_after_s", "max_failures", "window_s"}); !r)
        return std::unexpected("'restart': " + r.error());
    if (auto it = v.find("policy"); it != v.end()) {
        auto s = get_string(*it, "restart.policy");
        if (!s) return std::unexpected(s.error());
        if (*s == "never") p.mode = RestartMode::Never;
        else if (*s == "on-failure") p.mode = RestartMode::OnFailure;
        else if (*s == "always") p.mode = RestartMode::Always;
        else return std::unexpected(fmt::format("'restart.policy': '{}' is not never, on-failure or always", *s));
    }
    struct {
        const char* key;
        std::chrono::milliseconds* out;
    } durations[] = {{"backoff_initial_s", &p.backoff_initial},
                     {"backoff_max_s", &p.backoff_max},
                     {"reset_after_s", &p.reset_after},
                     {"window_s", &p.failure_window}};
    for (auto& d : durations)
        if (auto it = v.find(d.key); it != v.end()) {
            auto ms = get_seconds(*it, std::string("restart.") + d.key, 86400);
            if (!ms) return std::unexpected(ms.error());
            *d.out = *ms;
        }
    if (auto it = v.find("max_failures"); it != v.end()) {
        auto n = get_uint(*it, "restart.max_failures", 1, 1000000);
        if (!n) return std::unexpected(n.error());
        p.max_failures = unsigned(*n);
    }
    if (p.backoff_max < p.backoff_initial)
        return std::unexpected(std::string("'restart.backoff_max_s' is less than 'restart.backoff_initial_s'"));
    return p;
}

std::expected<HangSettings, Err> parse_hang(const json& v) {
    HangSettings h;
    if (v.is_boolean()) {
        h.enabled = v.get<bool>();
        return h;
    }
    if (!v.is_object()) return std::unexpected(std::string("'hang' must be true, false or an object"));
    if (auto r = only_keys(v, {"enabled", "min_s", "max_s", "factor", "half_life_s"}); !r) return std::unexpected("'hang': " + r.error());
    if (auto it = v.find("enabled"); it != v.end()) {
        auto b = get_bool(*it, "hang.enabled");
        if (!b) return std::unexpected(b.error());
        h.enabled = *b;
    }
    struct {
        const char* key;
        std::chrono::milliseconds* out;
    } durations[] = {{"min_s", &h.min}, {"max_s", &h.max}, {"half_life_s", &h.half_life}};
    for (auto& d : durations)
        if (auto it = v.find(d.key); it != v.end()) {
            auto ms = get_seconds(*it, std::string("hang.") + d.key, 86400);
            if (!ms) return std::unexpected(ms.error());
            *d.out = *ms;
        }
    if (auto it = v.find("factor"); it != v.end()) {
        if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 1 || it->get<double>() > 1000)
            return std::unexpected(std::string("'hang.factor' must be a number between 1 and 1000"));
        h.factor = it->get<double>();
    }
    if (h.min.count() < 100) return std::unexpected(std::string("'hang.min_s' must be at least 0.1"));
    if (h.max < h.min) return std::unexpected(std::string("'hang.max_s' is less than 'hang.min_s'"));
    return h;
}

std::expected<std::optional<WatchdogConfig>, Err> parse_watchdog(const json& v) {
    if (v.is_boolean()) return v.get<bool>() ? std::optional<WatchdogConfig>(WatchdogConfig{}) : std::nullopt;
    if (!v.is_object()) return std::unexpected(std::string("'watchdog' must be true, false or {\"timeout_s\": SECONDS}"));
    if (auto r = only_keys(v, {"timeout_s"}); !r) return std::unexpected("'watchdog': " + r.error());
    WatchdogConfig w;
    if (auto it = v.find("timeout_s"); it != v.end()) {
        auto ms = get_seconds(*it, "watchdog.timeout_s", 3600);
        if (!ms) return std::unexpected(ms.error());
        if (ms->count() < 100) return std::unexpected(std::string("'watchdog.timeout_s' must be at least 0.1"));
        w.timeout = *ms;
    }
    return w;
}

// "NAME,key=value,..." (command-line form) -> {"<first_key>": NAME, "key": value}:
// numbers stay numbers, true/false booleans, the rest strings.
std::expected<json, Err> spec_to_json(std::string_view spec, std::string_view flag, const char* first_key) {
    json o = json::object();
    size_t pos = 0;
    bool first = true;
    if (spec.empty()) return o;
    while (pos <= spec.size()) {
        size_t comma = spec.find(',', pos);
        std::string_view item = spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        pos = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
        size_t eq = item.find('=');
        if (eq == std::string_view::npos) {
            if (!first || !first_key || item.empty())
                return std::unexpected(fmt::format("{}: '{}' is not KEY=VALUE", flag, item));
            o[first_key] = std::string(item);
        } else {
            std::string key(item.substr(0, eq)), val(item.substr(eq + 1));
            if (key.empty() || o.contains(key)) return std::unexpected(fmt::format("{}: '{}' is empty or given twice", flag, key));
            char* end = nullptr;
            double d = std::strtod(val.c_str(), &end);
            if (val == "true" || val == "false") o[key] = val == "true";
            else if (!val.empty() && end && *end == 0) o[key] = d;
            else o[key] = val;
            if (o[key].is_number() && key == "max_failures") {
                if (d < 0 || d != std::floor(d)) return std::unexpected(fmt::format("{}: max_failures must be a whole number", flag));
                o[key] = uint64_t(d);
            }
        }
        first = false;
    }
    return o;
}

}  // namespace

std::optional<agent::GuestClass> parse_class_setting(std::string_view text) {
    if (text == "auto") return agent::GuestClass::Unknown;
    auto c = agent::parse_guest_class(text);
    if (c == agent::GuestClass::Unknown) return std::nullopt;  // the agent's "unknown" is not a setting
    return c;
}

std::string_view class_setting(agent::GuestClass c) { return c == agent::GuestClass::Unknown ? "auto" : to_string(c); }

namespace {

std::expected<GuestConfig, Err> parse_guest(const json& g) {
    if (!g.is_object()) return std::unexpected(std::string("must be an object"));
    GuestConfig gc;
    MachineConfig& m = gc.machine;
    m.console = "none";  // several guests cannot share one terminal; say "stdio" for one of them
    if (auto r = only_keys(g, {"name", "kernel", "initrd", "cmdline", "cpus", "mem", "console", "hugepages", "stats", "probes",
                               "unpack_kernel", "disks", "balloon", "restart", "pin", "shutdown_timeout_s", "controller",
                               "hang", "watchdog", "class"});
        !r)
        return std::unexpected(r.error());

    auto str = [&](const char* key, std::string& out) -> std::expected<void, Err> {
        if (auto it = g.find(key); it != g.end()) {
            auto s = get_string(*it, key);
            if (!s) return std::unexpected(s.error());
            out = std::move(*s);
        }
        return {};
    };
    auto flag = [&](const char* key, bool& out) -> std::expected<void, Err> {
        if (auto it = g.find(key); it != g.end()) {
            auto b = get_bool(*it, key);
            if (!b) return std::unexpected(b.error());
            out = *b;
        }
        return {};
    };
    for (auto [key, out] : {std::pair{"kernel", &m.kernel}, std::pair{"initrd", &m.initrd},
                            std::pair{"cmdline", &m.cmdline}, std::pair{"console", &m.console}})
        if (auto r = str(key, *out); !r) return std::unexpected(r.error());
    for (auto [key, out] : {std::pair{"hugepages", &m.hugepages}, std::pair{"stats", &m.stats},
                            std::pair{"unpack_kernel", &m.unpack_kernel}})
        if (auto r = flag(key, *out); !r) return std::unexpected(r.error());

    if (m.kernel.empty()) return std::unexpected(std::string("'kernel' is missing"));
    if (m.cmdline.size() >= 65535) return std::unexpected(std::string("'cmdline' is longer than 64 KiB"));
    if (m.console != "stdio" && m.console != "none" && m.console.rfind("file:", 0) != 0)
        return std::unexpected(fmt::format("'console': '{}' is not stdio, none or file:PATH", m.console));
    if (auto it = g.find("cpus"); it != g.end()) {
        auto n = get_uint(*it, "cpus", 1, 255);
        if (!n) return std::unexpected(n.error());
        m.cpus = unsigned(*n);
    }
    if (auto it = g.find("mem"); it != g.end()) {
        auto b = get_size(*it, "mem");
        if (!b) return std::unexpected(b.error());
        if (*b < (16ull << 20)) return std::unexpected(std::string("'mem' is too small (vireo needs at least 16M)"));
        if (*b % 4096) return std::unexpected(std::string("'mem' is not a whole number of 4 KiB pages"));
        m.mem_bytes = *b;
    }
    if (auto it = g.find("probes"); it != g.end()) {
        auto s = get_string(*it, "probes");
        if (!s) return std::unexpected(s.error());
        auto mode = parse_probe_mode(*s);
        if (!mode) return std::unexpected(fmt::format("'probes': '{}' is not on, off or auto", *s));
        m.probes = *mode;
    }
    if (auto it = g.find("disks"); it != g.end()) {
        if (!it->is_array()) return std::unexpected(std::string("'disks' must be an array of \"PATH[,ro][,direct][,...]\" strings"));
        for (const auto& d : *it) {
            auto spec = get_string(d, "disks[]");
            if (!spec) return std::unexpected(spec.error());
            auto disk = parse_disk_spec(*spec);
            if (!disk) return std::unexpected("'disks': " + disk.error());
            m.disks.push_back(std::move(*disk));
        }
    }
    if (auto it = g.find("balloon"); it != g.end()) {
        if (it->is_boolean()) {
            if (it->get<bool>()) m.balloon = BalloonConfig{};
        } else if (it->is_string()) {
            auto b = parse_balloon_spec(it->get<std::string>());
            if (!b) return std::unexpected("'balloon': " + b.error());
            m.balloon = std::move(*b);
        } else {
            return std::unexpected(std::string("'balloon' must be true, false or \"[deflate-on-oom][,stats=SECONDS][,reporting]\""));
        }
    }
    if (auto it = g.find("restart"); it != g.end()) {
        auto p = parse_restart(*it);
        if (!p) return std::unexpected(p.error());
        gc.restart = *p;
    }
    if (auto it = g.find("hang"); it != g.end()) {
        auto h = parse_hang(*it);
        if (!h) return std::unexpected(h.error());
        gc.hang = *h;
    }
    if (auto it = g.find("watchdog"); it != g.end()) {
        auto w = parse_watchdog(*it);
        if (!w) return std::unexpected(w.error());
        m.watchdog = *w;
    }
    if (auto it = g.find("pin"); it != g.end()) {
        if (!it->is_object()) return std::unexpected(std::string("'pin' must map vCPU numbers to CPU lists: {\"0\": \"1\"}"));
        for (auto p = it->begin(); p != it->end(); ++p) {
            unsigned vcpu = 0;
            const std::string& k = p.key();
            if (k.empty() || k.size() > 3 || k.find_first_not_of("0123456789") != std::string::npos)
                return std::unexpected(fmt::format("'pin': '{}' is not a vCPU number", k));
            vcpu = unsigned(std::stoul(k));
            if (vcpu >= m.cpus)
                return std::unexpected(fmt::format("'pin': vCPU {} does not exist (the guest has {} vCPU{})", vcpu, m.cpus,
                                                   m.cpus == 1 ? "" : "s"));
            auto cpus = get_cpus(*p, fmt::format("pin.{}", k));
            if (!cpus) return std::unexpected(cpus.error());
            gc.pinning[vcpu] = std::move(*cpus);
        }
    }
    if (auto it = g.find("shutdown_timeout_s"); it != g.end()) {
        auto ms = get_seconds(*it, "shutdown_timeout_s", 3600);
        if (!ms) return std::unexpected(ms.error());
        if (ms->count() == 0) return std::unexpected(std::string("'shutdown_timeout_s' must be more than 0"));
        gc.shutdown_timeout = *ms;
    }
    if (auto it = g.find("controller"); it != g.end()) {
        auto s = get_string(*it, "controller");
        if (!s) return std::unexpected(s.error());
        if (*s != "inherit") {
            auto mode = parse_controller_mode(*s);
            if (!mode) return std::unexpected(fmt::format("'controller': '{}' is not off, advise, auto or inherit", *s));
            gc.controller_mode = mode;
        }
    }
    if (auto it = g.find("class"); it != g.end()) {
        auto s = get_string(*it, "class");
        if (!s) return std::unexpected(s.error());
        auto c = parse_class_setting(*s);
        if (!c) return std::unexpected(fmt::format("'class': '{}' is not latency-sensitive, batch or auto", *s));
        gc.guest_class = *c;
    }
    return gc;
}

std::expected<void, Err> parse_controller(const json& v, HostConfig& hc) {
    if (!v.is_object()) return std::unexpected(std::string("'controller' must be an object"));
    if (auto r = only_keys(v, {"mode", "limits", "tick_s", "balloon_warmup_s"}); !r)
        return std::unexpected("'controller': " + r.error());
    // Seconds, fractions allowed: the tick (0.1 to 60) and the balloon policy's warm-up.
    auto seconds = [&](const char* key, double lo, double hi) -> std::expected<std::optional<double>, Err> {
        auto it = v.find(key);
        if (it == v.end()) return std::nullopt;
        if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi)
            return std::unexpected(fmt::format("'controller.{}': want seconds from {} to {}, got {}", key, lo, hi, it->dump()));
        return it->get<double>();
    };
    auto tick = seconds("tick_s", 0.1, 60);
    if (!tick) return std::unexpected(tick.error());
    if (*tick) hc.controller_tick = std::chrono::milliseconds(int64_t(**tick * 1000 + 0.5));
    auto warmup = seconds("balloon_warmup_s", 0, 86400);
    if (!warmup) return std::unexpected(warmup.error());
    hc.controller_balloon_warmup_s = *warmup;
    if (auto it = v.find("mode"); it != v.end()) {
        auto s = get_string(*it, "controller.mode");
        if (!s) return std::unexpected(s.error());
        auto mode = parse_controller_mode(*s);
        if (!mode) return std::unexpected(fmt::format("'controller.mode': '{}' is not off, advise or auto", *s));
        hc.controller_mode = *mode;
    }
    if (auto it = v.find("limits"); it != v.end()) {
        if (!it->is_object()) return std::unexpected(std::string("'controller.limits' must be an object"));
        if (auto r = only_keys(*it, kControllerLimitNames); !r) return std::unexpected("'controller.limits': " + r.error());
        for (const auto& f : kControllerLimitFields)
            if (auto fit = it->find(std::string(f.name)); fit != it->end()) {
                auto n = get_uint(*fit, fmt::format("controller.limits.{}", f.name), 0, f.max);
                if (!n) return std::unexpected(n.error());
                hc.controller_limits.*f.member = *n;
            }
    }
    return {};
}

}  // namespace

std::expected<GuestConfig, std::string> parse_guest_settings(const json& settings) { return parse_guest(settings); }

std::expected<RestartPolicy, std::string> parse_restart_spec(std::string_view spec) {
    auto j = spec_to_json(spec, "--restart", "policy");
    if (!j) return std::unexpected(j.error());
    auto p = parse_restart(*j);
    if (!p) return std::unexpected("--restart: " + p.error());
    return p;
}

std::expected<HangSettings, std::string> parse_hang_spec(std::string_view spec) {
    if (spec == "off") return HangSettings{.enabled = false};
    if (spec == "on") return HangSettings{};
    auto j = spec_to_json(spec, "--hang", nullptr);
    if (!j) return std::unexpected(j.error());
    auto h = parse_hang(*j);
    if (!h) return std::unexpected("--hang: " + h.error());
    return h;
}

std::expected<WatchdogConfig, std::string> parse_watchdog_spec(std::string_view spec) {
    if (spec == "on") spec = "";
    auto j = spec_to_json(spec, "--watchdog", nullptr);
    if (!j) return std::unexpected(j.error());
    auto w = parse_watchdog(*j);
    if (!w) return std::unexpected("--watchdog: " + w.error());
    return **w;
}

std::expected<void, std::string> check_guest_name(std::string_view name) {
    if (name.empty() || name.size() > 64 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != std::string_view::npos)
        return std::unexpected(fmt::format("'{}' must be 1-64 letters, digits, '-', '_' or '.'", name));
    return {};
}

std::expected<HostConfig, std::string> parse_host_config(std::string_view text, std::string_view origin) {
    auto fail = [&](const std::string& what) { return std::unexpected(fmt::format("{}: {}", origin, what)); };
    json doc;
    try {
        doc = json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for "1E999"
        std::string what = e.what();
        if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
        return fail("not valid JSON: " + what);
    }
    if (!doc.is_object()) return fail("the config must be a JSON object with a \"guests\" array");
    if (auto r = only_keys(doc, {"name", "control", "metrics_listen", "controller", "exit_when_all_stopped", "guests"}); !r)
        return fail(r.error());

    HostConfig hc;
    for (auto [key, out] : {std::pair{"name", &hc.name}, std::pair{"control", &hc.control_path},
                            std::pair{"metrics_listen", &hc.metrics_listen}})
        if (auto it = doc.find(key); it != doc.end()) {
            auto s = get_string(*it, key);
            if (!s) return fail(s.error());
            *out = std::move(*s);
        }
    if (!hc.name.empty())
        if (auto r = check_guest_name(hc.name); !r) return fail("'name': " + r.error());
    if (auto it = doc.find("exit_when_all_stopped"); it != doc.end()) {
        auto b = get_bool(*it, "exit_when_all_stopped");
        if (!b) return fail(b.error());
        hc.exit_when_all_stopped = *b;
    }
    if (auto it = doc.find("controller"); it != doc.end())
        if (auto r = parse_controller(*it, hc); !r) return fail(r.error());

    auto guests = doc.find("guests");
    if (guests == doc.end() || !guests->is_array() || guests->empty())
        return fail("'guests' must be a non-empty array of guests");
    std::set<std::string> names;
    unsigned stdio_consoles = 0;
    for (size_t i = 0; i < guests->size(); ++i) {
        const json& g = (*guests)[i];
        // Name the guest in every error; by its position until we know its name.
        std::string who = fmt::format("guest #{}", i + 1);
        if (g.is_object()) {
            auto n = g.find("name");
            if (n == g.end()) return fail(who + ": 'name' is missing");
            if (!n->is_string()) return fail(who + ": 'name' must be a string");
            std::string name = n->get<std::string>();
            if (auto r = check_guest_name(name); !r) return fail(who + ": 'name': " + r.error());
            who = fmt::format("guest '{}'", name);
            if (!names.insert(name).second) return fail(who + ": the name is used by another guest (names are unique)");
        }
        auto gc = parse_guest(g);
        if (!gc) return fail(who + ": " + gc.error());
        gc->machine.name = g["name"].get<std::string>();
        if (gc->machine.console == "stdio" && ++stdio_consoles > 1)
            return fail(who + ": 'console': only one guest may use stdio (the terminal)");
        hc.guests.push_back(std::move(*gc));
    }
    return hc;
}

std::expected<HostConfig, std::string> load_host_config(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return std::unexpected(fmt::format("--config {}: cannot open it", path));
    std::ostringstream text;
    text << f.rdbuf();
    if (text.str().size() > (16u << 20)) return std::unexpected(fmt::format("--config {}: over 16 MiB", path));
    return parse_host_config(text.str(), path);
}

}  // namespace vireo
