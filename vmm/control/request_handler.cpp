#include "vmm/control/request_handler.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "vireo/version.h"
#include "vmm/control/action_json.h"
#include "vmm/control/guest_json.h"
#include "vmm/host_view.h"
#include "vmm/overloaded.h"

namespace vireo::control {

namespace {
using json = nlohmann::json;

Error err(ErrorCode code, std::string message) { return {code, std::move(message)}; }

std::string who(const PeerCred& p) { return fmt::format("uid {} pid {}", p.uid, p.pid); }

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The running machine's telemetry; none while the guest is stopped.
std::optional<Telemetry> live_telemetry(const Guest& g) {
    return g.machine() ? std::optional(g.machine()->telemetry()) : std::nullopt;
}
}  // namespace

RequestHandler::~RequestHandler() {
    for (auto& [client, sub] : subs_) host_.bus().unsubscribe(sub.id);
}

void RequestHandler::on_line(ControlServer::ClientId client, const PeerCred& peer, std::string_view line) {
    ++requests_;
    auto req = parse_request(line);
    std::string out;
    if (!req) {
        ++errors_[std::string(to_string(req.error().error.code))];
        out = error_line(req.error().id, req.error().error);
    } else {
        auto r = handle(*req, peer, client);
        if (r) {
            out = result_line(req->id, std::move(*r));
        } else {
            ++errors_[std::string(to_string(r.error().code))];
            out = error_line(req->id, r.error());
        }
    }
    if (server_) server_->send(client, out);
    // An `events` request replays kept events right after its response.
    if (req && std::holds_alternative<req::Events>(req->body) && subs_.count(client)) {
        const auto& e = std::get<req::Events>(req->body);
        if (e.since) {
            const Subscription& sub = subs_.at(client);
            for (const Event& ev : host_.bus().since(*e.since)) {
                if (!sub.types.empty() && std::find(sub.types.begin(), sub.types.end(), ev.type) == sub.types.end()) continue;
                if (!sub.guest.empty() && ev.guest != sub.guest) continue;
                if (!server_->send(client, event_line(ev), /*stream=*/true)) break;
            }
        }
    }
}

void RequestHandler::on_close(ControlServer::ClientId client) { unsubscribe(client); }

void RequestHandler::unsubscribe(ControlServer::ClientId client) {
    auto it = subs_.find(client);
    if (it == subs_.end()) return;
    host_.bus().unsubscribe(it->second.id);
    subs_.erase(it);
}

std::expected<json, Error> RequestHandler::subscribe(const Request& r, const PeerCred& peer, ControlServer::ClientId client) {
    const auto& e = std::get<req::Events>(r.body);
    unsubscribe(client);  // a second `events` replaces the first
    Subscription sub;
    sub.types = e.types;
    sub.guest = r.guest;
    sub.pid = peer.pid;
    sub.id = host_.bus().subscribe([this, client](const Event& ev) {
        auto it = subs_.find(client);
        if (it == subs_.end() || !server_) return;
        const Subscription& s = it->second;
        if (!s.types.empty() && std::find(s.types.begin(), s.types.end(), ev.type) == s.types.end()) return;
        if (!s.guest.empty() && ev.guest != s.guest) return;
        pid_t pid = s.pid;
        if (!server_->send(client, event_line(ev), /*stream=*/true) && !server_->connected(client)) {
            // Too slow to keep up: dropped by the server (on_close has
            // unsubscribed it). Say so to everyone else.
            ++dropped_subscribers_;
            host_.bus().publish("subscriber-dropped", "", {{"pid", pid}, {"reason", "did not read its events"}});
        }
    });
    uint64_t next = host_.bus().next_seq();
    json result{{"subscribed", true}, {"next_seq", next}};
    if (e.since) {
        uint64_t missed = 0;
        auto kept = host_.bus().since(*e.since, &missed);
        result["replay_from"] = *e.since;
        result["missed"] = missed;  // fell out of the ring before this request
    }
    subs_[client] = std::move(sub);
    return result;
}

std::expected<json, Error> RequestHandler::act(const Request& r, const PeerCred& peer, Action action) {
    ActionResult res = host_.actuator().apply(action, Origin{ActionSource::Admin, who(peer), r.reason});
    if (res.outcome == Outcome::Refused) return std::unexpected(res.error.value_or(err(ErrorCode::Internal, "refused")));
    json j{{"seq", res.seq}, {"outcome", std::string(to_string(res.outcome))}};
    if (Guest* g = action.guest.empty() ? nullptr : host_.find(action.guest)) j["state"] = std::string(to_string(g->state()));
    return j;
}

std::expected<json, Error> RequestHandler::info() {
    EndpointStats ends = host_.endpoint_stats();
    auto online = online_cpus();
    return json{{"version", VIREO_VERSION},
                {"pid", ::getpid()},
                {"name", std::string(host_.name())},
                {"uptime_s", seconds_since(host_.started())},
                {"guests", host_.guests().size()},
                {"control", ends.control ? json(ends.control->path) : json()},
                {"metrics", ends.metrics ? json(fmt::format("http://{}/metrics", ends.metrics->address)) : json()},
                {"controller", std::string(to_string(host_.actuator().controller_mode()))},
                {"host_cpus",
                 {{"online", online ? format_cpu_list(*online) : std::string()},
                  {"allowed", format_cpu_list(host_.allowed_cpus())}}},
                {"events_next_seq", host_.bus().next_seq()},
                {"decisions_next_seq", host_.actuator().decisions().next_seq()},
                {"requests", json{{"names", request_names()}}}};
}

std::expected<json, Error> RequestHandler::list() {
    json a = json::array();
    for (const auto& guest : host_.guests()) a.push_back(guest_summary_json(*guest, *host_.supervisor().find(guest->name())));
    return json{{"guests", std::move(a)}};
}

std::expected<json, Error> RequestHandler::guest_action(const Request& r, const PeerCred& peer, Guest* g, const req::GuestAction& ga) {
    auto j = act(r, peer, Action{r.guest, ga.body});
    if (j && (std::holds_alternative<action::Pin>(ga.body) || std::holds_alternative<action::Unpin>(ga.body))) {
        json pins = json::array();
        for (const auto& p : g->pinning()) pins.push_back(p ? json(format_cpu_list(*p)) : json());
        (*j)["pinning"] = std::move(pins);
    }
    return j;
}

std::expected<json, Error> RequestHandler::vcpus(Guest* g) {
    std::optional<Telemetry> t = live_telemetry(*g);
    if (!t) t = g->final_telemetry();  // a stopped guest: what it had when it stopped
    return json{{"guest", g->name()}, {"state", std::string(to_string(g->state()))}, {"vcpus", vcpus_json(*g, t, false)}};
}

std::expected<json, Error> RequestHandler::balloon(const Request& r, const PeerCred& peer, Guest* g, const req::Balloon& b) {
    if (!g->has_balloon())
        return std::unexpected(err(ErrorCode::Unavailable, fmt::format("guest {} has no balloon", g->name())));
    json j;
    if (b.target_bytes) {
        auto a = act(r, peer, Action{r.guest, action::BalloonTarget{*b.target_bytes}});
        if (!a) return a;
        j = std::move(*a);
    }
    j["guest"] = g->name();
    j["balloon"] = balloon_json(*g);
    return j;
}

std::expected<json, Error> RequestHandler::disks(Guest* g) {
    std::optional<Telemetry> t = live_telemetry(*g);
    return json{{"guest", g->name()}, {"disks", disks_json(*g, t)}};
}

std::expected<json, Error> RequestHandler::metrics(Guest* g) {
    json guests = json::array();
    for (const auto& guest : host_.guests()) {
        if (g && guest.get() != g) continue;
        std::optional<Telemetry> t = live_telemetry(*guest);
        json gj = guest_summary_json(*guest, *host_.supervisor().find(guest->name()));
        gj["vcpus"] = vcpus_json(*guest, t, true);
        gj["balloon"] = balloon_json(*guest);
        gj["disks"] = disks_json(*guest, t);
        guests.push_back(std::move(gj));
    }
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    return json{{"monotonic_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()},
                {"guests", std::move(guests)}};
}

std::expected<json, Error> RequestHandler::controller(const Request& r, const PeerCred& peer, Guest* g, const req::Controller& c) {
    std::vector<Action> actions;
    if (!g) {
        if (c.mode) actions.push_back(Action{"", action::ControllerModeSet{*c.mode}});
        if (!c.limits.empty()) {
            ControllerLimits l = host_.actuator().controller_limits();
            for (const auto& [name, value] : c.limits)
                if (const ControllerLimitField* f = find_controller_limit(name)) l.*f->member = value;
            actions.push_back(Action{"", action::ControllerLimitsSet{l}});
        }
    } else if (c.guest_mode || !c.release.empty() || !c.hold.empty()) {
        GuestControl gc = host_.actuator().control(g->name());
        if (c.guest_mode) gc.mode = *c.guest_mode;
        for (const auto& lever : c.release) (lever == "pin" ? gc.pin_held : gc.balloon_held) = false;
        for (const auto& lever : c.hold) (lever == "pin" ? gc.pin_held : gc.balloon_held) = true;
        actions.push_back(Action{g->name(), action::GuestControlSet{gc}});
    }
    // Every value was checked by the parser, so either all of
    // these apply or (a host-side refusal) the first fails alone.
    json applied = json::array();
    for (const auto& a : actions) {
        auto res = act(r, peer, a);
        if (!res) return res;
        applied.push_back((*res)["seq"]);
    }
    json j{{"mode", std::string(to_string(host_.actuator().controller_mode()))}, {"limits", to_json(host_.actuator().controller_limits())}};
    json guests = json::object();
    for (const auto& guest : host_.guests())
        if (!g || guest.get() == g) {
            json gj = to_json(host_.actuator().control(guest->name()));
            gj["effective_mode"] = std::string(to_string(host_.actuator().effective_mode(guest->name())));
            guests[guest->name()] = std::move(gj);
        }
    j["guests"] = std::move(guests);
    j["applied"] = std::move(applied);
    return j;
}

std::expected<json, Error> RequestHandler::decisions(Guest* g, const req::Decisions& d) {
    json a = json::array();
    const auto& log = host_.actuator().decisions();
    for (const ActionRecord* rec : log.recent(log.size())) {
        if (a.size() >= d.limit) break;
        if (g && rec->action.guest != g->name()) continue;
        a.push_back(to_json(*rec));
    }
    return json{{"decisions", std::move(a)},
                {"next_seq", log.next_seq()},
                {"kept", log.size()},
                {"capacity", log.capacity()},
                {"evicted", log.evicted()}};
}

std::expected<json, Error> RequestHandler::undo(const Request& r, const PeerCred& peer, const req::Undo& u) {
    ActionLog& log = host_.actuator().decisions();
    const ActionRecord* rec = log.find(u.seq);
    if (!rec)
        return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("no decision #{} (kept: #{} to #{})", u.seq,
                                                                      log.next_seq() - log.size(), log.next_seq() - 1)));
    if (rec->outcome != Outcome::Applied)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("decision #{} was {}: nothing to undo", u.seq,
                                                                    to_string(rec->outcome))));
    if (rec->undone_by)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("decision #{} was already undone by #{}", u.seq,
                                                                    *rec->undone_by)));
    if (rec->undo.empty())
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("decision #{} ({}) cannot be undone", u.seq,
                                                                    action_name(rec->action.body))));
    std::vector<Action> steps = rec->undo;  // apply() may evict rec from the ring
    json applied = json::array();
    uint64_t last = 0;
    for (const auto& a : steps) {
        ActionResult res = host_.actuator().apply(a, Origin{ActionSource::Admin, who(peer),
                                                 fmt::format("undo of #{}{}", u.seq, r.reason.empty() ? "" : ": " + r.reason)});
        if (ActionRecord* mine = log.find(res.seq)) mine->undoes = u.seq;
        if (res.outcome == Outcome::Refused)
            return std::unexpected(res.error.value_or(err(ErrorCode::Internal, "undo refused")));
        applied.push_back(res.seq);
        last = res.seq;
    }
    if (ActionRecord* orig = log.find(u.seq)) orig->undone_by = last;
    return json{{"undone", u.seq}, {"applied", std::move(applied)}};
}

// One member per request, so each answer can be read (and tested) alone.
std::expected<json, Error> RequestHandler::handle(const Request& r, const PeerCred& peer, ControlServer::ClientId client) {
    Guest* g = nullptr;
    if (!r.guest.empty()) {
        g = host_.find(r.guest);
        if (!g) return std::unexpected(err(ErrorCode::UnknownGuest, fmt::format("no guest named '{}'", r.guest)));
    }
    return std::visit(
        overloaded{
            [&](const req::Info&) { return info(); },
            [&](const req::List&) { return list(); },
            [&](const req::GuestAction& x) { return guest_action(r, peer, g, x); },
            [&](const req::Vcpus&) { return vcpus(g); },
            [&](const req::Balloon& x) { return balloon(r, peer, g, x); },
            [&](const req::Disks&) { return disks(g); },
            [&](const req::Metrics&) { return metrics(g); },
            [&](const req::Controller& x) { return controller(r, peer, g, x); },
            [&](const req::Decisions& x) { return decisions(g, x); },
            [&](const req::Undo& x) { return undo(r, peer, x); },
            [&](const req::Events&) { return subscribe(r, peer, client); },
        },
        r.body);
}

}  // namespace vireo::control
