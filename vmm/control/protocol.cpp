#include "vmm/control/protocol.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "vmm/cli.h"
#include "vmm/cpu_list.h"

namespace vireo::control {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxIdLength = 256;
constexpr size_t kMaxReason = 1024;
constexpr size_t kMaxDecisions = 4096;

struct Spec {
    std::string_view name;
    enum class Guest { None, Required, Optional } guest;
    std::vector<std::string_view> keys;  // besides id, request, guest, reason
};

const std::vector<Spec>& specs() {
    using G = Spec::Guest;
    static const std::vector<Spec> s = {
        {"info", G::None, {}},
        {"list", G::None, {}},
        {"pause", G::Required, {}},
        {"resume", G::Required, {}},
        {"shutdown", G::Required, {"timeout_s"}},
        {"poweroff", G::Required, {}},
        {"restart", G::Required, {}},
        {"vcpus", G::Required, {}},
        {"pin", G::Required, {"vcpu", "cpus"}},
        {"unpin", G::Required, {"vcpu"}},
        {"balloon", G::Required, {"target"}},
        {"disks", G::Required, {}},
        {"metrics", G::Optional, {}},
        {"controller", G::Optional, {"mode", "limits", "release", "hold"}},
        {"decisions", G::Optional, {"limit"}},
        {"undo", G::None, {"seq"}},
        {"events", G::Optional, {"since", "types"}},
    };
    return s;
}

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
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            return std::unexpected(fmt::format("'{}': '{}' is not one of {}", key, s.size() > 64 ? s.substr(0, 64) + "..." : s, list));
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

}  // namespace

const std::vector<std::string_view>& request_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n;
        for (const auto& s : specs()) n.push_back(s.name);
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
    const auto& all = specs();
    auto spec = std::find_if(all.begin(), all.end(), [&](const Spec& s) { return s.name == r.name; });
    if (spec == all.end()) {
        std::string shown = r.name.size() > 64 ? r.name.substr(0, 64) + "..." : r.name;
        return std::unexpected(fail(id, ErrorCode::UnknownRequest, fmt::format("unknown request '{}'", shown)));
    }

    for (auto it = doc.begin(); it != doc.end(); ++it) {
        const std::string& k = it.key();
        if (k == "id" || k == "request" || k == "reason") continue;
        if (k == "guest" && spec->guest != Spec::Guest::None) continue;
        if (std::find(spec->keys.begin(), spec->keys.end(), k) == spec->keys.end()) {
            std::string shown = k.size() > 64 ? k.substr(0, 64) + "..." : k;
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: unknown field '{}'", r.name, shown)));
        }
    }
    if (auto g = doc.find("guest"); g != doc.end()) {
        if (!g->is_string() || g->get_ref<const std::string&>().empty())
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: 'guest' must be a non-empty string", r.name)));
        r.guest = g->get<std::string>();
    } else if (spec->guest == Spec::Guest::Required) {
        return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("{}: 'guest' is missing", r.name)));
    }
    if (auto reason = doc.find("reason"); reason != doc.end()) {
        if (!reason->is_string() || reason->get_ref<const std::string&>().size() > kMaxReason)
            return std::unexpected(fail(id, ErrorCode::BadRequest, fmt::format("'reason' must be a string of at most {} bytes", kMaxReason)));
        r.reason = reason->get<std::string>();
    }

    auto bad = [&](const std::string& m) { return std::unexpected(fail(id, ErrorCode::BadRequest, r.name + ": " + m)); };
    auto field = [&](const char* key) -> const json* {
        auto it = doc.find(key);
        return it == doc.end() ? nullptr : &*it;
    };

    const std::string_view n = r.name;
    if (n == "info") r.body = req::Info{};
    else if (n == "list") r.body = req::List{};
    else if (n == "pause") r.body = req::GuestAction{action::Pause{}};
    else if (n == "resume") r.body = req::GuestAction{action::Resume{}};
    else if (n == "poweroff") r.body = req::GuestAction{action::Poweroff{}};
    else if (n == "restart") r.body = req::GuestAction{action::Restart{}};
    else if (n == "vcpus") r.body = req::Vcpus{};
    else if (n == "disks") r.body = req::Disks{};
    else if (n == "metrics") r.body = req::Metrics{};
    else if (n == "shutdown") {
        action::Shutdown s;
        if (const json* t = field("timeout_s")) {
            auto v = unsigned_field(*t, "timeout_s", 1, 3600);
            if (!v) return bad(v.error());
            s.timeout = std::chrono::seconds(*v);
        }
        r.body = req::GuestAction{s};
    } else if (n == "pin") {
        action::Pin p;
        const json* v = field("vcpu");
        if (!v) return bad("'vcpu' is missing");
        auto vcpu = unsigned_field(*v, "vcpu", 0, 1023);
        if (!vcpu) return bad(vcpu.error());
        p.vcpu = unsigned(*vcpu);
        const json* c = field("cpus");
        if (!c) return bad("'cpus' is missing");
        auto cpus = cpus_field(*c);
        if (!cpus) return bad(cpus.error());
        p.cpus = std::move(*cpus);
        r.body = req::GuestAction{std::move(p)};
    } else if (n == "unpin") {
        action::Unpin u;
        if (const json* v = field("vcpu")) {
            auto vcpu = unsigned_field(*v, "vcpu", 0, 1023);
            if (!vcpu) return bad(vcpu.error());
            u.vcpu = unsigned(*vcpu);
        }
        r.body = req::GuestAction{u};
    } else if (n == "balloon") {
        req::Balloon b;
        if (const json* t = field("target")) {
            if (t->is_string()) {
                auto size = parse_size(t->get<std::string>());
                if (!size) return bad("'target': " + size.error());
                b.target_bytes = *size;
            } else {
                auto v = unsigned_field(*t, "target", 0, UINT64_MAX);
                if (!v) return bad(v.error() + " (bytes, or a size like \"512M\")");
                b.target_bytes = *v;
            }
        }
        r.body = b;
    } else if (n == "controller") {
        req::Controller c;
        if (const json* m = field("mode")) {
            if (!m->is_string()) return bad("'mode' must be a string");
            const auto& text = m->get_ref<const std::string&>();
            auto mode = parse_controller_mode(text);
            if (r.guest.empty()) {
                if (!mode) return bad("'mode' must be off, advise or auto");
                c.mode = mode;
            } else {
                if (!mode && text != "inherit") return bad("'mode' must be off, advise, auto or inherit");
                c.guest_mode = mode;  // nullopt inside: inherit
            }
        }
        if (const json* l = field("limits")) {
            if (!r.guest.empty()) return bad("'limits' are process-wide: give them without 'guest'");
            if (!l->is_object()) return bad("'limits' must be an object");
            for (auto it = l->begin(); it != l->end(); ++it) {
                const ControllerLimitField* f = find_controller_limit(it.key());
                if (!f) {
                    std::string shown = it.key().size() > 64 ? it.key().substr(0, 64) + "..." : it.key();
                    return bad(fmt::format("unknown limit '{}'", shown));
                }
                auto v = unsigned_field(*it, it.key(), 0, f->max);
                if (!v) return bad(v.error());
                c.limits.emplace_back(it.key(), *v);
            }
        }
        for (auto [key, out] : {std::pair{"release", &c.release}, std::pair{"hold", &c.hold}}) {
            if (const json* v = field(key)) {
                if (r.guest.empty()) return bad(fmt::format("'{}' needs 'guest'", key));
                auto list = string_list(*v, key, {"pin", "balloon"});
                if (!list) return bad(list.error());
                *out = std::move(*list);
            }
        }
        for (const auto& h : c.hold)
            if (std::find(c.release.begin(), c.release.end(), h) != c.release.end())
                return bad(fmt::format("'{}' is both held and released", h));
        r.body = std::move(c);
    } else if (n == "decisions") {
        req::Decisions d;
        if (const json* v = field("limit")) {
            auto lim = unsigned_field(*v, "limit", 1, kMaxDecisions);
            if (!lim) return bad(lim.error());
            d.limit = size_t(*lim);
        }
        r.body = d;
    } else if (n == "undo") {
        req::Undo u;
        const json* v = field("seq");
        if (!v) return bad("'seq' is missing");
        auto seq = unsigned_field(*v, "seq", 1, UINT64_MAX);
        if (!seq) return bad(seq.error());
        u.seq = *seq;
        r.body = u;
    } else if (n == "events") {
        req::Events e;
        if (const json* v = field("since")) {
            auto s = unsigned_field(*v, "since", 0, UINT64_MAX);
            if (!s) return bad(s.error());
            e.since = *s;
        }
        if (const json* v = field("types")) {
            auto list = string_list(*v, "types", {});
            if (!list) return bad(list.error());
            e.types = std::move(*list);
        }
        r.body = std::move(e);
    }
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
