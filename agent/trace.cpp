#include "agent/trace.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <istream>
#include <ostream>
#include <span>

#include <nlohmann/json.hpp>

#include "vireo/strict_keys.h"

namespace vireo::agent {

namespace {

using json = nlohmann::json;
using Err = std::string;

// Longest line we read: a snapshot of 255 guests of 255 vCPUs is ~10 MiB.
constexpr size_t kMaxLineBytes = 64u << 20;

std::string in_quotes(std::string_view key) { return "'" + std::string(key) + "'"; }

std::string escape_controls(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c == '\n') out += "\\n";
        else if (c < 0x20 || c == 0x7f) out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
        else out += char(c);
    }
    return out;
}

std::expected<void, Err> only_keys(const json& obj, std::span<const std::string_view> keys) {
    if (auto e = first_unknown_key(obj, keys)) return std::unexpected(*e);
    return {};
}
std::expected<void, Err> only_keys(const json& obj, std::initializer_list<std::string_view> keys) {
    return only_keys(obj, std::span(keys.begin(), keys.size()));
}

std::expected<const json*, Err> field(const json& obj, std::string_view key) {
    auto it = obj.find(key);
    if (it == obj.end()) return std::unexpected("missing " + in_quotes(key));
    return &*it;
}

std::expected<const json*, Err> object_field(const json& obj, std::string_view key) {
    auto f = field(obj, key);
    if (!f) return f;
    if (!(*f)->is_object()) return std::unexpected(in_quotes(key) + " must be an object, not " + (*f)->type_name());
    return f;
}

std::expected<uint64_t, Err> get_uint(const json& obj, std::string_view key, uint64_t hi = UINT64_MAX) {
    auto f = field(obj, key);
    if (!f) return std::unexpected(f.error());
    const json& v = **f;
    if (!v.is_number_unsigned()) {
        if (v.is_number_integer()) return std::unexpected(in_quotes(key) + " must not be negative");
        return std::unexpected(in_quotes(key) + " must be an integer, not " + (v.is_number() ? "a fraction or too large" : v.type_name()));
    }
    uint64_t n = v.get<uint64_t>();
    if (n > hi) return std::unexpected(in_quotes(key) + " must be at most " + std::to_string(hi));
    return n;
}

std::expected<double, Err> get_percent(const json& obj, std::string_view key) {
    auto f = field(obj, key);
    if (!f) return std::unexpected(f.error());
    if (!(*f)->is_number()) return std::unexpected(in_quotes(key) + " must be a number, not " + (*f)->type_name());
    double v = (*f)->get<double>();
    if (!std::isfinite(v) || v < 0 || v > 100) return std::unexpected(in_quotes(key) + " must be between 0 and 100");
    return v;
}

std::expected<bool, Err> get_bool(const json& obj, std::string_view key) {
    auto f = field(obj, key);
    if (!f) return std::unexpected(f.error());
    if (!(*f)->is_boolean()) return std::unexpected(in_quotes(key) + " must be true or false, not " + (*f)->type_name());
    return (*f)->get<bool>();
}

std::expected<std::string, Err> get_string(const json& obj, std::string_view key) {
    auto f = field(obj, key);
    if (!f) return std::unexpected(f.error());
    if (!(*f)->is_string()) return std::unexpected(in_quotes(key) + " must be a string, not " + (*f)->type_name());
    return (*f)->get<std::string>();
}

// A sorted list of unique CPU numbers.
std::expected<std::vector<unsigned>, Err> get_cpus(const json& v, std::string_view key) {
    if (!v.is_array() || v.empty()) return std::unexpected(in_quotes(key) + " must be a non-empty array of CPU numbers or null");
    std::vector<unsigned> cpus;
    for (const auto& c : v) {
        if (!c.is_number_unsigned() || c.get<uint64_t>() >= 1024)
            return std::unexpected(in_quotes(key) + " must hold CPU numbers from 0 to 1023");
        unsigned n = unsigned(c.get<uint64_t>());
        if (!cpus.empty() && n <= cpus.back()) return std::unexpected(in_quotes(key) + " must be sorted and without repeats");
        cpus.push_back(n);
    }
    return cpus;
}

// Runs `parse` on each element of the array obj[key], prefixing errors with "key[i]".
std::expected<void, Err> each(const json& obj, std::string_view key, const std::function<std::expected<void, Err>(const json&)>& parse) {
    auto f = field(obj, key);
    if (!f) return std::unexpected(f.error());
    if (!(*f)->is_array()) return std::unexpected(in_quotes(key) + " must be an array, not " + (*f)->type_name());
    size_t i = 0;
    for (const auto& item : **f) {
        if (!item.is_object()) return std::unexpected(std::string(key) + "[" + std::to_string(i) + "] must be an object");
        if (auto r = parse(item); !r) return std::unexpected(std::string(key) + "[" + std::to_string(i) + "]: " + r.error());
        ++i;
    }
    return {};
}

#define TRY(var, expr)                                         \
    auto var = (expr);                                         \
    if (!var) return std::unexpected(std::move(var.error()))

std::expected<ControllerLimits, Err> parse_limits(const json& j) {
    if (auto r = only_keys(j, kControllerLimitNames); !r) return std::unexpected(r.error());
    ControllerLimits l;
    for (const auto& f : kControllerLimitFields) {
        TRY(n, get_uint(j, f.name, f.max));
        l.*f.member = *n;
    }
    return l;
}

constexpr std::string_view kStatNames[] = {"swap_in",          "swap_out",    "major_faults",        "minor_faults",
                                           "free_memory",      "total_memory", "available_memory",   "disk_caches",
                                           "hugetlb_allocations", "hugetlb_failures"};

std::optional<uint64_t>* stat_slot(BalloonStats& s, std::string_view name) {
    if (name == "swap_in") return &s.swap_in;
    if (name == "swap_out") return &s.swap_out;
    if (name == "major_faults") return &s.major_faults;
    if (name == "minor_faults") return &s.minor_faults;
    if (name == "free_memory") return &s.free_memory;
    if (name == "total_memory") return &s.total_memory;
    if (name == "available_memory") return &s.available_memory;
    if (name == "disk_caches") return &s.disk_caches;
    if (name == "hugetlb_allocations") return &s.hugetlb_allocations;
    if (name == "hugetlb_failures") return &s.hugetlb_failures;
    return nullptr;
}

std::expected<BalloonSample, Err> parse_balloon(const json& j, uint64_t ram) {
    if (auto r = only_keys(j, {"target_bytes", "actual_bytes", "deflate_on_oom_events", "stats"}); !r)
        return std::unexpected(r.error());
    BalloonSample b;
    TRY(target, get_uint(j, "target_bytes", ram));
    TRY(actual, get_uint(j, "actual_bytes", ram));
    TRY(ooms, get_uint(j, "deflate_on_oom_events"));
    b.target_bytes = *target;
    b.actual_bytes = *actual;
    b.deflate_on_oom_events = *ooms;
    TRY(stats, object_field(j, "stats"));
    for (auto it = (*stats)->begin(); it != (*stats)->end(); ++it) {
        auto* slot = stat_slot(b.stats, it.key());
        if (!slot) return std::unexpected("stats: " + unknown_key_message(it.key(), kStatNames));
        TRY(v, get_uint(**stats, it.key()));
        *slot = *v;
    }
    return b;
}

std::expected<VcpuSample, Err> parse_vcpu(const json& j) {
    if (auto r = only_keys(j, {"vcpu", "tid", "pin", "in_kvm_run_ns", "runq_wait_ns", "runq_waits", "halt_wait_ns", "exits"}); !r)
        return std::unexpected(r.error());
    VcpuSample v;
    TRY(index, get_uint(j, "vcpu", 1023));
    TRY(tid, get_uint(j, "tid", INT32_MAX));
    v.index = unsigned(*index);
    v.tid = int32_t(*tid);
    TRY(pin, field(j, "pin"));
    if (!(*pin)->is_null()) {
        TRY(cpus, get_cpus(**pin, "pin"));
        v.pinned_cpus = std::move(*cpus);
    }
    TRY(run, get_uint(j, "in_kvm_run_ns"));
    TRY(wait, get_uint(j, "runq_wait_ns"));
    TRY(waits, get_uint(j, "runq_waits"));
    TRY(halt, get_uint(j, "halt_wait_ns"));
    TRY(exits, get_uint(j, "exits"));
    v.in_kvm_run_ns = *run;
    v.runq_wait_ns = *wait;
    v.runq_waits = *waits;
    v.halt_wait_ns = *halt;
    v.exits = *exits;
    return v;
}

std::expected<GuestSample, Err> parse_guest(const json& j) {
    if (auto r = only_keys(j, {"name", "ram_bytes", "class", "control", "balloon", "vcpus"}); !r) return std::unexpected(r.error());
    GuestSample g;
    TRY(name, get_string(j, "name"));
    if (name->empty() || name->size() > 64) return std::unexpected(std::string("'name' must be 1 to 64 characters"));
    g.name = std::move(*name);
    auto in_guest = [&](const Err& e) { return "guest '" + g.name + "': " + e; };
    auto ram = get_uint(j, "ram_bytes");
    if (!ram) return std::unexpected(in_guest(ram.error()));
    g.ram_bytes = *ram;
    auto cls = get_string(j, "class");
    if (!cls) return std::unexpected(in_guest(cls.error()));
    auto c = parse_guest_class(*cls);
    if (!c) return std::unexpected(in_guest("'class' must be latency-sensitive, batch or unknown, not '" + *cls + "'"));
    g.configured_class = *c;

    auto control = object_field(j, "control");
    if (!control) return std::unexpected(in_guest(control.error()));
    if (auto r = only_keys(**control, {"mode", "pin_held", "balloon_held"}); !r) return std::unexpected(in_guest("control: " + r.error()));
    auto mode = field(**control, "mode");
    if (!mode) return std::unexpected(in_guest("control: " + mode.error()));
    if (!(*mode)->is_null()) {
        auto m = (*mode)->is_string() ? parse_controller_mode((*mode)->get<std::string>()) : std::nullopt;
        if (!m) return std::unexpected(in_guest("control: 'mode' must be off, advise, auto or null"));
        g.control.mode = *m;
    }
    auto pin_held = get_bool(**control, "pin_held");
    if (!pin_held) return std::unexpected(in_guest("control: " + pin_held.error()));
    auto balloon_held = get_bool(**control, "balloon_held");
    if (!balloon_held) return std::unexpected(in_guest("control: " + balloon_held.error()));
    g.control.pin_held = *pin_held;
    g.control.balloon_held = *balloon_held;

    auto balloon = field(j, "balloon");
    if (!balloon) return std::unexpected(in_guest(balloon.error()));
    if (!(*balloon)->is_null()) {
        if (!(*balloon)->is_object()) return std::unexpected(in_guest("'balloon' must be an object or null"));
        auto b = parse_balloon(**balloon, g.ram_bytes);
        if (!b) return std::unexpected(in_guest("balloon: " + b.error()));
        g.balloon = std::move(*b);
    }
    auto r = each(j, "vcpus", [&](const json& v) -> std::expected<void, Err> {
        TRY(vcpu, parse_vcpu(v));
        for (const auto& other : g.vcpus)
            if (other.index == vcpu->index) return std::unexpected("vCPU " + std::to_string(vcpu->index) + " is listed twice");
        g.vcpus.push_back(std::move(*vcpu));
        return {};
    });
    if (!r) return std::unexpected(in_guest(r.error()));
    return g;
}

std::expected<Snapshot, Err> parse_snapshot(const json& j) {
    if (!j.is_object()) return std::unexpected(std::string("a snapshot must be a JSON object, not ") + j.type_name());
    if (auto r = only_keys(j, {"t_ns", "mode", "limits", "host", "guests"}); !r) return std::unexpected(r.error());
    Snapshot s;
    TRY(t, get_uint(j, "t_ns"));
    s.timestamp_ns = *t;
    TRY(mode_text, get_string(j, "mode"));
    auto mode = parse_controller_mode(*mode_text);
    if (!mode) return std::unexpected("'mode' must be off, advise or auto, not '" + *mode_text + "'");
    s.mode = *mode;
    TRY(limits_json, object_field(j, "limits"));
    auto limits = parse_limits(**limits_json);
    if (!limits) return std::unexpected("limits: " + limits.error());
    s.limits = *limits;

    TRY(host, object_field(j, "host"));
    if (auto r = only_keys(**host, {"cpus", "mem_total_bytes", "mem_available_bytes", "psi"}); !r)
        return std::unexpected("host: " + r.error());
    auto cpus = each(**host, "cpus", [&](const json& c) -> std::expected<void, Err> {
        if (auto r = only_keys(c, {"cpu", "busy_ns"}); !r) return r;
        TRY(cpu, get_uint(c, "cpu", 1023));
        TRY(busy, get_uint(c, "busy_ns"));
        if (!s.host_cpus.empty() && *cpu <= s.host_cpus.back().cpu)
            return std::unexpected(std::string("CPUs must be listed in increasing order without repeats"));
        s.host_cpus.push_back({unsigned(*cpu), *busy});
        return {};
    });
    if (!cpus) return std::unexpected("host: " + cpus.error());
    auto total = get_uint(**host, "mem_total_bytes");
    if (!total) return std::unexpected("host: " + total.error());
    auto avail = get_uint(**host, "mem_available_bytes", *total);
    if (!avail) return std::unexpected("host: " + avail.error());
    s.host_mem_total_bytes = *total;
    s.host_mem_available_bytes = *avail;
    auto psi = object_field(**host, "psi");
    if (!psi) return std::unexpected("host: " + psi.error());
    if (auto r = only_keys(**psi, {"memory_some_avg10", "memory_full_avg10", "cpu_some_avg10"}); !r)
        return std::unexpected("host: psi: " + r.error());
    for (auto [key, slot] : {std::pair{"memory_some_avg10", &s.pressure.memory_some_avg10},
                             std::pair{"memory_full_avg10", &s.pressure.memory_full_avg10},
                             std::pair{"cpu_some_avg10", &s.pressure.cpu_some_avg10}}) {
        auto v = get_percent(**psi, key);
        if (!v) return std::unexpected("host: psi: " + v.error());
        *slot = *v;
    }

    auto guests = each(j, "guests", [&](const json& g) -> std::expected<void, Err> {
        TRY(guest, parse_guest(g));
        for (const auto& other : s.guests)
            if (other.name == guest->name) return std::unexpected("guest '" + guest->name + "' is listed twice");
        s.guests.push_back(std::move(*guest));
        return {};
    });
    if (!guests) return std::unexpected(guests.error());
    return s;
}

json cpus_json(const std::optional<std::vector<unsigned>>& cpus) { return cpus ? json(*cpus) : json(nullptr); }

}  // namespace

std::string trace_header() { return json{{"vireo_trace", kTraceVersion}}.dump(); }

static json limits_json(const ControllerLimits& l) {
    json j = json::object();
    for (const auto& f : kControllerLimitFields) j[std::string(f.name)] = l.*f.member;
    return j;
}

std::string to_trace_line(const Snapshot& s) {
    json host_cpus = json::array();
    for (const auto& c : s.host_cpus) host_cpus.push_back({{"cpu", c.cpu}, {"busy_ns", c.busy_ns}});
    json guests = json::array();
    for (const auto& g : s.guests) {
        json vcpus = json::array();
        for (const auto& v : g.vcpus)
            vcpus.push_back({{"vcpu", v.index}, {"tid", v.tid}, {"pin", cpus_json(v.pinned_cpus)},
                             {"in_kvm_run_ns", v.in_kvm_run_ns}, {"runq_wait_ns", v.runq_wait_ns},
                             {"runq_waits", v.runq_waits}, {"halt_wait_ns", v.halt_wait_ns}, {"exits", v.exits}});
        json balloon = nullptr;
        if (g.balloon) {
            json stats = json::object();
            BalloonStats st = g.balloon->stats;
            for (auto name : kStatNames)
                if (auto* slot = stat_slot(st, name); slot && *slot) stats[std::string(name)] = **slot;
            balloon = {{"target_bytes", g.balloon->target_bytes},
                       {"actual_bytes", g.balloon->actual_bytes},
                       {"deflate_on_oom_events", g.balloon->deflate_on_oom_events},
                       {"stats", stats}};
        }
        json control = {{"mode", g.control.mode ? json(std::string(to_string(*g.control.mode))) : json(nullptr)},
                        {"pin_held", g.control.pin_held},
                        {"balloon_held", g.control.balloon_held}};
        guests.push_back({{"name", g.name}, {"ram_bytes", g.ram_bytes}, {"class", std::string(to_string(g.configured_class))},
                          {"control", control}, {"balloon", balloon}, {"vcpus", vcpus}});
    }
    json j = {{"t_ns", s.timestamp_ns},
              {"mode", std::string(to_string(s.mode))},
              {"limits", limits_json(s.limits)},
              {"host",
               {{"cpus", host_cpus},
                {"mem_total_bytes", s.host_mem_total_bytes},
                {"mem_available_bytes", s.host_mem_available_bytes},
                {"psi",
                 {{"memory_some_avg10", s.pressure.memory_some_avg10},
                  {"memory_full_avg10", s.pressure.memory_full_avg10},
                  {"cpu_some_avg10", s.pressure.cpu_some_avg10}}}}},
              {"guests", guests}};
    return j.dump();
}

std::expected<Snapshot, std::string> parse_trace_line(std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return std::unexpected(std::string("not JSON"));
    return parse_snapshot(j);
}

std::expected<std::vector<Snapshot>, std::string> read_trace(std::istream& in) {
    std::vector<Snapshot> out;
    std::string line;
    size_t number = 0;
    bool header = false;
    // One line whatever the trace holds: names and values from the file are
    // quoted in the message, so their control characters are escaped.
    auto at = [&](const std::string& e) { return "line " + std::to_string(number) + ": " + escape_controls(e); };
    while (std::getline(in, line)) {
        ++number;
        if (line.size() > kMaxLineBytes) return std::unexpected(at("longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB"));
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        if (!header) {
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object() || j.size() != 1 || !j.contains("vireo_trace"))
                return std::unexpected(at("not a vireo trace: the first line must be " + trace_header()));
            if (!j["vireo_trace"].is_number_unsigned() || j["vireo_trace"].get<uint64_t>() != uint64_t(kTraceVersion))
                return std::unexpected(at("trace version " + j["vireo_trace"].dump() + " is not supported (this reads " +
                                          std::to_string(kTraceVersion) + ")"));
            header = true;
            continue;
        }
        auto s = parse_trace_line(line);
        if (!s) return std::unexpected(at(s.error()));
        if (!out.empty() && s->timestamp_ns <= out.back().timestamp_ns)
            return std::unexpected(at("'t_ns' must grow from one snapshot to the next"));
        out.push_back(std::move(*s));
    }
    if (!header) return std::unexpected(std::string("empty trace: no header line"));
    return out;
}

std::expected<std::vector<Snapshot>, std::string> read_trace_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::unexpected(path + ": cannot open");
    auto r = read_trace(in);
    if (!r) return std::unexpected(path + ": " + r.error());
    return r;
}

void write_trace(std::ostream& out, const std::vector<Snapshot>& snapshots) {
    out << trace_header() << '\n';
    for (const auto& s : snapshots) out << to_trace_line(s) << '\n';
}

}  // namespace vireo::agent
