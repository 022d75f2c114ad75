#include "vmm/actuator/guest_actuator.h"

#include <fmt/format.h>

#include <memory>
#include <utility>

#include "vmm/log.h"
#include "vmm/overloaded.h"
#include "vmm/wall_time.h"

namespace vireo {

namespace {

Error err(ErrorCode code, std::string message) { return {code, std::move(message)}; }

// Process-wide actions carry no guest; every other one needs one.
bool needs_guest(const ActionBody& b) {
    return !std::holds_alternative<action::ControllerModeSet>(b) && !std::holds_alternative<action::ControllerLimitsSet>(b);
}

std::optional<double> seconds_since(GuestActuator::Clock::time_point now, GuestActuator::Clock::time_point then) {
    if (then == GuestActuator::Clock::time_point{}) return std::nullopt;
    return std::chrono::duration<double>(now - then).count();
}

}  // namespace

GuestActuator::GuestActuator(GuestRegistry& guests, Hooks hooks, ControllerMode mode, ControllerLimits limits)
    : guests_(guests), hooks_(std::move(hooks)), mode_(mode), limits_(limits) {}

const GuestControl& GuestActuator::control(std::string_view guest) const {
    static const GuestControl kDefault;
    auto it = levers_.find(guest);
    return it == levers_.end() ? kDefault : it->second.control;
}

std::future<ActionResult> GuestActuator::submit(Action action, Origin origin) {
    auto promise = std::make_shared<std::promise<ActionResult>>();
    auto future = promise->get_future();
    hooks_.post([this, promise, a = std::move(action), o = std::move(origin)] { promise->set_value(apply(a, o)); });
    return future;
}

ActionResult GuestActuator::apply(const Action& a, const Origin& o) {
    ActionRecord rec;
    rec.time_ns = realtime_ns();
    rec.action = a;
    rec.origin = o;
    auto r = execute(a, o, rec.undo);
    rec.outcome = r ? *r : Outcome::Refused;
    if (!r) {
        rec.error = r.error();
        rec.undo.clear();
    }
    uint64_t seq = log(rec);
    return {rec.outcome, rec.error, seq};
}

void GuestActuator::record_applied(const Action& action, const Origin& origin, std::vector<Action> undo) {
    log(ActionRecord{.time_ns = realtime_ns(), .action = action, .origin = origin, .outcome = Outcome::Applied, .error = {},
                     .undo = std::move(undo)});
}

uint64_t GuestActuator::log(ActionRecord record) {
    ++action_counts_[{record.origin.source, std::string(action_name(record.action.body)), record.outcome}];
    uint64_t seq = decisions_.append(std::move(record));
    if (hooks_.decided) hooks_.decided(*decisions_.find(seq));
    return seq;
}

std::expected<void, Error> GuestActuator::check_limits(ActuatedGuest& g, const Action& a) {
    // The controller paces its changes by its snapshots' clock; the
    // actuator measures from when a change was applied. A decision is
    // applied a variable time after its snapshot (milliseconds natively,
    // more under emulation), so "10 s after the last change" by the
    // controller's clock can be 9.998 s here: half a second of slack keeps
    // such changes from being refused every other time (seen in the QEMU
    // L1: half the reclaim steps refused) without loosening the limit.
    constexpr double kIntervalSlackS = 0.5;
    auto now = hooks_.now();
    const Levers& lv = levers_[g.name()];
    auto with_slack = [](std::optional<double> s) { return s ? std::optional(*s + kIntervalSlackS) : s; };
    std::optional<LimitHit> hit;
    if (auto* b = std::get_if<action::BalloonTarget>(&a.body))
        hit = balloon_limit_hit(limits_, g.ram_bytes(), g.balloon_target(), b->bytes,
                                with_slack(seconds_since(now, lv.last_balloon_change)));
    if (auto* p = std::get_if<action::Pin>(&a.body)) {
        auto it = lv.last_pin_change.find(p->vcpu);
        hit = pin_limit_hit(limits_, p->vcpu, with_slack(it == lv.last_pin_change.end() ? std::nullopt : seconds_since(now, it->second)));
    }
    if (!hit) return {};
    ++limit_hits_[std::string(hit->limit)];
    log_info("controller: {} refused by limit {}: {}", g.name(), hit->limit, hit->message);
    return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("limit {}: {}", hit->limit, hit->message)));
}

std::expected<void, Error> GuestActuator::check_controller(ActuatedGuest& g, const Action& a) {
    if (std::holds_alternative<action::GuestControlSet>(a.body))
        return std::unexpected(err(ErrorCode::Conflict, "the controller may not change a guest's overrides"));
    ControllerMode mode = effective_mode(g.name());
    if (mode == ControllerMode::Off)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("the controller is off for guest {}", g.name())));
    const GuestControl& c = control(g.name());
    bool pin = std::holds_alternative<action::Pin>(a.body) || std::holds_alternative<action::Unpin>(a.body);
    bool balloon = std::holds_alternative<action::BalloonTarget>(a.body);
    if ((pin && c.pin_held) || (balloon && c.balloon_held))
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("an administrator holds the {} of guest {} (release it with "
                                                                    "the controller request)",
                                                                    pin ? "pinning" : "balloon", g.name())));
    return check_limits(g, a);
}

std::expected<Outcome, Error> GuestActuator::execute(const Action& a, const Origin& o, std::vector<Action>& undo) {
    if (!needs_guest(a.body)) {
        if (!a.guest.empty())
            return std::unexpected(err(ErrorCode::BadRequest, fmt::format("{} is process-wide; it takes no guest", action_name(a.body))));
        // The controller acts only as far as its mode and limits let it.
        if (o.source == ActionSource::Controller)
            return std::unexpected(err(ErrorCode::Conflict, "the controller may not change its own mode or limits"));
        if (auto* m = std::get_if<action::ControllerModeSet>(&a.body)) {
            undo = {Action{"", action::ControllerModeSet{mode_}}};
            mode_ = m->mode;
            return Outcome::Applied;
        }
        const auto& l = std::get<action::ControllerLimitsSet>(a.body).limits;
        for (const auto& f : kControllerLimitFields)
            if (l.*f.member > f.max) return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("{} is over {}", f.name, f.max)));
        undo = {Action{"", action::ControllerLimitsSet{limits_}}};
        limits_ = l;
        return Outcome::Applied;
    }
    if (a.guest.empty()) return std::unexpected(err(ErrorCode::BadRequest, fmt::format("{} needs a guest", action_name(a.body))));
    ActuatedGuest* g = guests_.find(a.guest);
    if (!g) return std::unexpected(err(ErrorCode::UnknownGuest, fmt::format("no guest named '{}'", a.guest)));
    if (o.source == ActionSource::Controller) {
        if (auto r = check_controller(*g, a); !r) return std::unexpected(r.error());
        if (effective_mode(g->name()) == ControllerMode::Advise) return Outcome::Advised;
    }
    return execute_on(*g, a, o, undo);
}

std::expected<Outcome, Error> GuestActuator::execute_on(ActuatedGuest& g, const Action& a, const Origin& o,
                                                        std::vector<Action>& undo) {
    auto now = hooks_.now();
    Levers& lv = levers_[g.name()];
    const bool admin = o.source == ActionSource::Admin;
    auto done = [](std::expected<void, Error> r) -> std::expected<Outcome, Error> {
        if (!r) return std::unexpected(r.error());
        return Outcome::Applied;
    };
    return std::visit(
        overloaded{
            [&](const action::Pause&) {
                auto r = g.pause();
                if (r) undo = {Action{g.name(), action::Resume{}}};
                return done(r);
            },
            [&](const action::Resume&) {
                auto r = g.resume();
                if (r) {
                    undo = {Action{g.name(), action::Pause{}}};
                    guests_.resumed(g);
                }
                return done(r);
            },
            [&](const action::Shutdown& s) { return done(guests_.shutdown(g, s.timeout)); },
            [&](const action::Poweroff&) { return done(guests_.poweroff(g, o)); },
            [&](const action::Restart&) { return done(guests_.restart(g, o)); },
            [&](const action::Pin& p) {
                std::optional<CpuList> before = p.vcpu < g.pinning().size() ? g.pinning()[p.vcpu] : std::nullopt;
                auto r = g.pin(p.vcpu, p.cpus);
                if (r) {
                    undo = {before ? Action{g.name(), action::Pin{p.vcpu, *before}} : Action{g.name(), action::Unpin{p.vcpu}}};
                    lv.last_pin_change[p.vcpu] = now;
                    if (admin) lv.control.pin_held = true;
                }
                return done(r);
            },
            [&](const action::Unpin& u) {
                auto before = g.pinning();
                auto r = g.unpin(u.vcpu);
                if (r) {
                    for (unsigned i = 0; i < before.size(); ++i)
                        if (before[i] && (!u.vcpu || *u.vcpu == i)) {
                            undo.push_back(Action{g.name(), action::Pin{i, *before[i]}});
                            lv.last_pin_change[i] = now;
                        }
                    if (admin) lv.control.pin_held = true;
                }
                return done(r);
            },
            [&](const action::BalloonTarget& b) {
                uint64_t before = g.balloon_target();
                auto r = g.set_balloon_target(b.bytes);
                if (r) {
                    undo = {Action{g.name(), action::BalloonTarget{before}}};
                    lv.last_balloon_change = now;
                    if (admin) lv.control.balloon_held = true;
                }
                return done(r);
            },
            [&](const action::GuestControlSet& c) -> std::expected<Outcome, Error> {
                undo = {Action{g.name(), action::GuestControlSet{lv.control}}};
                lv.control = c.control;
                return Outcome::Applied;
            },
            [&](const auto&) -> std::expected<Outcome, Error> {
                return std::unexpected(err(ErrorCode::Internal, "a process-wide action reached a guest"));
            },
        },
        a.body);
}

}  // namespace vireo
