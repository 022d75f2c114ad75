#include "vmm/control/protocol.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "vireo/strict_keys.h"
#include "vmm/cli.h"
#include "vmm/control/request_table.h"
#include "vmm/cpu_list.h"

namespace vireo::control {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxIdLength = 256;
constexpr size_t kMaxReason = 1024;
constexpr size_t kMaxDecisions = 4096;

ProtocolError fail(const json& id, ErrorCode code, std::string message) { return {id, {code, std::move(message)}}; }

std::string type_name(const json& v) {
    if (v.is_number_float()) return "a fractional number";
    if (v.is_number()) return "a number";
    return v.type_name();
}

// A non-negative integer within [lo, hi].
std::expected<uint64_t, std::string> unsigned_field(const json& v, std::string_view key, uint64_t lo, uint64_t hi) {
    uint64_t n;
    if (v.is_number_unsigned()) n = v.get<uint64_t>();
    else if (v.is_number_integer()) return std::unexpected(fmt::format("'{}' must not be negative", key));
    else return std::unexpected(fmt::format("'{}' must be an integer, not {}", key, type_name(v)));
    if (n < lo || n > hi) return std::unexpected(fmt::format("'{}' must be between {} and {}, not {}", key, lo, hi, n));
    return n;
}

std::expected<std::vector<std::string>, std::string> string_list(const json& v, std::string_view key,
                                                                 const std::vector<std::string_view>& allowed) {
    if (!v.is_array()) return std::unexpected(fmt::format("'{}' must be an array of strings", key));
    std::vector<std::string> out;
    for (const auto& item : v) {
        if (!item.is_string()) return std::unexpected(fmt::format("'{}' must be an array of strings", key));
        auto s = item.get<std::string>();
        if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
            return std::unexpected(
                fmt::format("'{}': '{}' is not one of {}", key, s.size() > 64 ? s.substr(0, 64) + "..." : s, join_names(allowed)));
        }
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
    }
    return out;
}

std::expected<CpuList, std::string> cpus_field(const json& v) {
    if (v.is_string()) {
        auto l = parse_cpu_list(v.get<std::string>());
        if (!l) return std::unexpected("'cpus': " + l.error());
        return l;
    }
    if (!v.is_array() || v.empty())
        return std::unexpected(std::string("'cpus' must be a non-empty array of CPU numbers or a list like \"0-1,3\""));
    CpuList out;
    for (const auto& c : v) {
        auto n = unsigned_field(c, "cpus", 0, kMaxCpus - 1);
        if (!n) return std::unexpected(n.error());
        out.push_back(unsigned(*n));
    }
    return normalize_cpu_list(std::move(out));
}


// ---- the body of each request, from its fields (known to be only those
// its table entry lists); errors are one line without the request's name.
using Body = std::expected<RequestBody, std::string>;

const json* field(const json& doc, const char* key) {
    auto it = doc.find(key);
    return it == doc.end() ? nullptr : &*it;
}

Body shutdown_body(const json& doc, const Request&) {
    action::Shutdown s;
    if (const json* t = field(doc, "timeout_s")) {
        auto v = unsigned_field(*t, "timeout_s", 1, 3600);
        if (!v) return std::unexpected(v.error());
        s.timeout = std::chrono::seconds(*v);
    }
    return req::GuestAction{s};
}

Body pin_body(const json& doc, const Request&) {
    action::Pin p;
    const json* v = field(doc, "vcpu");
    if (!v) return std::unexpected(std::string("'vcpu' is missing"));
    auto vcpu = unsigned_field(*v, "vcpu", 0, 1023);
    if (!vcpu) return std::unexpected(vcpu.error());
    p.vcpu = unsigned(*vcpu);
    const json* c = field(doc, "cpus");
    if (!c) return std::unexpected(std::string("'cpus' is missing"));
    auto cpus = cpus_field(*c);
    if (!cpus) return std::unexpected(cpus.error());
    p.cpus = std::move(*cpus);
    return req::GuestAction{std::move(p)};
}

Body unpin_body(const json& doc, const Request&) {
    action::Unpin u;
    if (const json* v = field(doc, "vcpu")) {
        auto vcpu = unsigned_field(*v, "vcpu", 0, 1023);
        if (!vcpu) return std::unexpected(vcpu.error());
        u.vcpu = unsigned(*vcpu);
    }
    return req::GuestAction{u};
}

Body balloon_body(const json& doc, const Request&) {
    req::Balloon b;
    if (const json* t = field(doc, "target")) {
        if (t->is_string()) {
            auto size = parse_size(t->get<std::string>());
            if (!size) return std::unexpected("'target': " + size.error());
            b.target_bytes = *size;
        } else {
            auto v = unsigned_field(*t, "target", 0, UINT64_MAX);
            if (!v) return std::unexpected(v.error() + " (bytes, or a size like \"512M\")");
            b.target_bytes = *v;
        }
    }
    return b;
}

Body controller_body(const json& doc, const Request& r) {
    req::Controller c;
    if (const json* m = field(doc, "mode")) {
        if (!m->is_string()) return std::unexpected(std::string("'mode' must be a string"));
        const auto& text = m->get_ref<const std::string&>();
        auto mode = parse_controller_mode(text);
        if (r.guest.empty()) {
            if (!mode) return std::unexpected(std::string("'mode' must be off, advise or auto"));
            c.mode = mode;
        } else {
            if (!mode && text != "inherit") return std::unexpected(std::string("'mode' must be off, advise, auto or inherit"));
            c.guest_mode = mode;  // nullopt inside: inherit
        }
    }
    if (const json* l = field(doc, "limits")) {
        if (!r.guest.empty()) return std::unexpected(std::string("'limits' are process-wide: give them without 'guest'"));
        if (!l->is_object()) return std::unexpected(std::string("'limits' must be an object"));
        for (auto it = l->begin(); it != l->end(); ++it) {
            const ControllerLimitField* f = find_controller_limit(it.key());
            if (!f) {
                std::string shown = it.key().size() > 64 ? it.key().substr(0, 64) + "..." : it.key();
                return std::unexpected(fmt::format("unknown limit '{}'", shown));
            }
            auto v = unsigned_field(*it, it.key(), 0, f->max);
            if (!v) return std::unexpected(v.error());
            c.limits.emplace_back(it.key(), *v);
        }
    }
    for (auto [key, out] : {std::pair{"release", &c.release}, std::pair{"hold", &c.hold}}) {
        if (const json* v = field(doc, key)) {
            if (r.guest.empty()) return std::unexpected(fmt::format("'{}' needs 'guest'", key));
            auto list = string_list(*v, key, {"pin", "balloon"});
            if (!list) return std::unexpected(list.error());
            *out = std::move(*list);
        }
    }
    for (const auto& h : c.hold)
        if (std::find(c.release.begin(), c.release.end(), h) != c.release.end())
            return std::unexpected(fmt::format("'{}' is both held and released", h));
    return c;
}

Body decisions_body(const json& doc, const Request&) {
    req::Decisions d;
    if (const json* v = field(doc, "limit")) {
        auto lim = unsigned_field(*v, "limit", 1, kMaxDecisions);
        if (!lim) return std::unexpected(lim.error());
        d.limit = size_t(*lim);
    }
    return d;
}

Body undo_body(const json& doc, const Request&) {
    req::Undo u;
    const json* v = field(doc, "seq");
    if (!v) return std::unexpected(std::string("'seq' is missing"));
    auto seq = unsigned_field(*v, "seq", 1, UINT64_MAX);
    if (!seq) return std::unexpected(seq.error());
    u.seq = *seq;
    return u;
}

Body events_body(const json& doc, const Request&) {
    req::Events e;
    if (const json* v = field(doc, "since")) {
        auto s = unsigned_field(*v, "since", 0, UINT64_MAX);
        if (!s) return std::unexpected(s.error());
        e.since = *s;
    }
    if (const json* v = field(doc, "types")) {
        auto list = string_list(*v, "types", {});
        if (!list) return std::unexpected(list.error());
        e.types = std::move(*list);
    }
    return e;
}

// Requests without fields of their own.
template <class B>
Body plain(const json&, const Request&) {
    return B{};
}
template <class A>
Body guest_action(const json&, const Request&) {
    return req::GuestAction{A{}};
}

using BodyParser = Body (*)(const json&, const Request&);

// One per entry of the request table (request_table.cpp).
BodyParser body_parser(std::string_view name) {
    static const std::map<std::string_view, BodyParser> parsers = {
        {"info", plain<req::Info>},
        {"list", plain<req::List>},
        {"pause", guest_action<action::Pause>},
        {"resume", guest_action<action::Resume>},
        {"shutdown", shutdown_body},
        {"poweroff", guest_action<action::Poweroff>},
        {"restart", guest_action<action::Restart>},
        {"vcpus", plain<req::Vcpus>},
        {"pin", pin_body},
        {"unpin", unpin_body},
        {"balloon", balloon_body},
        {"disks", plain<req::Disks>},
        {"metrics", plain<req::Metrics>},
        {"controller", controller_body},
        {"decisions", decisions_body},
        {"undo", undo_body},
        {"events", events_body},
    };
    auto it = parsers.find(name);
    return it == parsers.end() ? nullptr : it->second;
}

}  // namespace

const std::vector<std::string_view>& request_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n;
        for (const auto& s : request_specs()) n.push_back(s.name);
        return n;
    }();
    return names;
}

std::expected<Request, ProtocolError> parse_request(std::string_view line) {
    const json null_id;
    if (line.size() > kMaxMessage)
        return std::unexpected(
            fail(null_id, ErrorCode::TooLarge, fmt::format("message of {} bytes is over the {} byte limit", line.size(), kMaxMessage)));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // socat/telnet CRLF

    json doc;
    try {
        doc = json::parse(line.begin(), line.end());
    } catch (const json::exception& e) {
        // parse_error, but also out_of_range.406 for a number too large for
        // a double ("1E999"): any exception here is the peer's bad input.
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at ...": keep the useful part.
        if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
        return std::unexpected(fail(null_id, ErrorCode::ParseError, "not JSON: " + what));
    }
    if (!doc.is_object()) return std::unexpected(fail(null_id, ErrorCode::BadRequest, "a request must be a JSON object"));

    Request r;
    auto id_it = doc.find("id");
    if (id_it == doc.end()) return std::unexpected(fail(null_id, ErrorCode::BadRequest, "'id' is missing"));
    if (id_it->is_number_integer() || (id_it->is_string() && id_it->get_ref<const std::string&>().size() <= kMaxIdLength))
        r.id = *id_it;
    else
        return std::unexpected(fail(null_id, ErrorCode::BadRequest,
                                    fmt::format("'id' must be an integer or a string of at most {} bytes", kMaxIdLength)));
    const json& id = r.id;

    auto req_it = doc.find("request");
    if (req_it == doc.end()) return std::unexpected(fail(id, ErrorCode::BadRequest, "'request' is missing"));
    if (!req_it->is_string()) return std::unexpected(fail(id, ErrorCode::BadRequest, "'request' must be a string"));
    r.name = req_it->get<std::string>();
    const RequestSpec* spec = find_request_spec(r.name);
    if (!spec) {
        std::string shown = r.name.size() > 64 ? r.name.substr(0, 64) + "..." : r.name;
        return std::unexpected(fail(id, ErrorCode::UnknownRequest, fmt::format("unknown request '{}'", shown)));
    }

    for (auto it = doc.begin(); it != doc.end(); ++it) {
        const std::string& k = it.key();
        if (k == "id" || k == "request" || k == "reason") continue;
        if (k == "guest" && spec->guest != GuestArg::None) continue;
        if (std::none_of(spec->fields.begin(), spec->fields.end(), [&](const RequestField& f) { return f.key == k; })) {
            std::string shown = k.size() > 64 ? k.substr(0, 64) + "..." : k;
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: unknown field '{}'", r.name, shown)));
        }
    }
    if (auto g = doc.find("guest"); g != doc.end()) {
        if (!g->is_string() || g->get_ref<const std::string&>().empty())
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: 'guest' must be a non-empty string", r.name)));
        r.guest = g->get<std::string>();
    } else if (spec->guest == GuestArg::Required) {
        return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: 'guest' is missing", r.name)));
    }
    if (auto reason = doc.find("reason"); reason != doc.end()) {
        if (!reason->is_string() || reason->get_ref<const std::string&>().size() > kMaxReason)
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("'reason' must be a string of at most {} bytes", kMaxReason)));
        r.reason = reason->get<std::string>();
    }

    BodyParser parse_body = body_parser(r.name);
    if (!parse_body)  // a table entry without a parser: a bug, not the peer's fault
        return std::unexpected(fail(id, ErrorCode::Internal, fmt::format("{}: no parser for this request", r.name)));
    auto body = parse_body(doc, r);
    if (!body) return std::unexpected(fail(id, ErrorCode::BadRequest, r.name + ": " + body.error()));
    r.body = std::move(*body);
    return r;
}

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string result_line(const nlohmann::json& id, nlohmann::json result) {
    return dump(json{{"id", id}, {"result", std::move(result)}});
}

std::string error_line(const nlohmann::json& id, const Error& error) {
    return dump(json{{"id", id}, {"error", {{"code", std::string(to_string(error.code))}, {"message", error.message}}}});
}

}  // namespace vireo::control
