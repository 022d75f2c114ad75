#include "vmm/supervisor/supervisor.h"

#include <utility>

#include <fmt/format.h>

#include "vmm/log.h"

namespace vireo {

void Supervisor::add(SupervisedGuest& guest, const RestartPolicy& policy, const HangSettings& hang) {
    entries_.push_back(std::make_unique<Entry>(Entry{&guest, Supervision(policy, hang)}));
}

const Supervision* Supervisor::find(std::string_view name) const {
    for (const auto& e : entries_)
        if (e->guest->name() == name) return &e->s;
    return nullptr;
}

Supervisor::Entry& Supervisor::entry(SupervisedGuest& guest) {
    for (auto& e : entries_)
        if (e->guest == &guest) return *e;
    // Every guest is added when the host is built; one that is not is a bug.
    add(guest, RestartPolicy{}, HangSettings{});
    log_error("guest {}: supervised without being added (no restart policy)", guest.name());
    return *entries_.back();
}

void Supervisor::start_health_checks() {
    hooks_.after(kHealthInterval, [this] {
        check_health();
        start_health_checks();
    });
}

void Supervisor::check_health() {
    auto now = hooks_.now();
    uint64_t now_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
    for (auto& e : entries_) {
        SupervisedGuest& g = *e->guest;
        if (g.state() != GuestState::Running || g.stop_requested()) continue;
        report_restart_latency(g);
        if (auto evidence = g.watchdog_expired(now_ns)) {
            g.request_stop({StopReason::Watchdog, 0, *evidence});
            continue;
        }
        if (e->s.hang.settings().enabled && g.can_detect_hangs())
            if (auto evidence = e->s.hang.sample(now, g.health())) g.request_stop({StopReason::Hang, 0, *evidence});
    }
}

void Supervisor::started(SupervisedGuest& guest) {
    Entry& e = entry(guest);
    auto now = hooks_.now();
    e.s.backoff.on_start(now);
    e.s.hang.reset(now);
    e.s.restart_due.reset();
    if (e.s.hang.settings().enabled && guest.starts() == 1 && !guest.can_detect_hangs())
        log_warn("guest {}: hang detection off: this KVM has no binary stats (halt_wakeup, blocking)", guest.name());
}

void Supervisor::resumed(SupervisedGuest& guest) { entry(guest).s.hang.reset(hooks_.now()); }

void Supervisor::stopped(SupervisedGuest& g, const StopRequest& req) {
    Entry& e = entry(g);
    auto now = hooks_.now();
    StopKind kind = stop_kind(req);
    RestartDecision d = e.s.backoff.on_stop(kind, now);
    std::string cause = describe(req);
    const RestartPolicy& policy = e.s.backoff.policy();
    switch (d.kind) {
        case RestartDecision::Kind::Stay:
            if (policy.mode != RestartMode::Never && kind != StopKind::Operator)
                log_info("guest {}: not restarted: {}", g.name(), d.why);
            return;
        case RestartDecision::Kind::Fail: {
            unsigned failures = e.s.backoff.failures_in_window(now);
            log_warn("guest {}: failed: {}; it stays stopped until an administrator restarts it", g.name(), d.why);
            g.set_state(GuestState::Failed, d.why);
            bus_.publish("failed", g.name(),
                         {{"failures", failures},
                          {"window_s", policy.failure_window.count() / 1000.0},
                          {"max_failures", policy.max_failures},
                          {"last", cause}});
            return;
        }
        case RestartDecision::Kind::Restart: break;
    }
    bus_.publish("restart-scheduled", g.name(),
                 {{"reason", std::string(to_string(req.reason))},
                  {"evidence", cause},
                  {"delay_ms", d.delay.count()},
                  {"attempt", e.s.backoff.consecutive_restarts()},
                  {"failures_in_window", e.s.backoff.failures_in_window(now)}});
    if (d.delay.count() == 0) {
        restart_now(e, cause, req.at != Clock::time_point{} ? req.at : now, d.delay);
        return;
    }
    log_info("guest {}: {}; restarting in {:.1f} s", g.name(), cause, d.delay.count() / 1000.0);
    g.set_state(GuestState::Backoff, d.why);
    e.s.restart_due = now + d.delay;
    Entry* ep = &e;
    e.s.timer = hooks_.after(d.delay, [this, ep, cause, delay = d.delay] {
        ep->s.timer.reset();
        // The back-off is the policy's; the latency measured is vireo's own.
        restart_now(*ep, cause, hooks_.now(), delay);
    });
}

void Supervisor::restart_now(Entry& e, const std::string& cause, Clock::time_point detected_at, std::chrono::milliseconds delay) {
    e.guest->set_restart_detected_at(detected_at);
    e.s.scheduled_delay = delay;
    hooks_.restart(*e.guest, cause);
}

void Supervisor::report_restart_latency(SupervisedGuest& g) {
    Entry& e = entry(g);
    uint64_t restarts = g.starts() ? g.starts() - 1 : 0;
    if (restarts <= e.s.reported_restarts) return;
    if (auto latency = g.restart_latency()) {
        e.s.reported_restarts = restarts;
        log_info("guest {}: restart {} took {:.1f} ms from the fault's detection to its first instruction", g.name(), restarts,
                 double(latency->count()) / 1e6);
    }
}

bool Supervisor::cancel_restart(SupervisedGuest& g) {
    Entry& e = entry(g);
    bool pending = e.s.timer.has_value();
    if (pending) hooks_.cancel(*std::exchange(e.s.timer, std::nullopt));
    e.s.restart_due.reset();
    return pending;
}

std::expected<void, Error> Supervisor::restart(SupervisedGuest& g, const Origin& o,
                                               const std::function<std::expected<void, Error>(const std::string& why)>& run) {
    Entry& e = entry(g);
    std::string why = fmt::format("restart by {}{}", to_string(o.source), o.reason.empty() ? "" : ": " + o.reason);
    bool own = o.source == ActionSource::Supervisor;
    // Anyone but the policy itself restarting a guest (an administrator
    // bringing back a failed one) starts its back-off over.
    if (!own) {
        e.s.backoff.reset();
        g.set_restart_detected_at(hooks_.now());
    }
    std::string cause = own && g.last_stop() ? std::string(to_string(g.last_stop()->reason)) : std::string(to_string(o.source));
    auto delay = std::exchange(e.s.scheduled_delay, std::chrono::milliseconds(0));
    cancel_restart(g);
    auto r = run(why);
    if (r) {
        e.s.history.push_back({hooks_.realtime_ns(), o.reason.empty() ? why : o.reason, delay.count(), std::string(to_string(o.source))});
        while (e.s.history.size() > Supervision::kHistory) e.s.history.pop_front();
        ++e.s.restarts_by_reason[cause];
    }
    return r;
}

}  // namespace vireo
