#include "vmm/host.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vireo/exit_status.h"
#include "vmm/control/action_json.h"
#include "vmm/control/request_handler.h"
#include "vmm/control/socket_path.h"
#include "vmm/controller/controller_thread.h"
#include "vmm/devices/ib700_watchdog.h"
#include "vmm/log.h"
#include "vmm/metrics/host_metrics.h"
#include "vmm/metrics/metrics_listener.h"
#include "vmm/overloaded.h"
#include "vmm/security/privileges.h"
#include "vmm/wall_time.h"

namespace vireo {

namespace {

Error err(ErrorCode code, std::string message) { return {code, std::move(message)}; }

// How a stop counts for the restart policy.
StopKind stop_kind(const StopRequest& r) {
    switch (r.reason) {
        case StopReason::Operator: return StopKind::Operator;
        case StopReason::PowerOff: return StopKind::Clean;
        case StopReason::Reset: return StopKind::Reboot;
        case StopReason::TestExit: return r.code == 0 ? StopKind::Clean : StopKind::Failure;
        case StopReason::Panic:
        case StopReason::TripleFault:
        case StopReason::KvmError:
        case StopReason::Hang:
        case StopReason::Watchdog:
        case StopReason::HostError: return StopKind::Failure;
    }
    return StopKind::Failure;
}

bool is_fault(StopReason r) {
    return r == StopReason::Panic || r == StopReason::TripleFault || r == StopReason::KvmError || r == StopReason::HostError ||
           r == StopReason::Hang || r == StopReason::Watchdog;
}

std::string describe(const StopRequest& r) {
    std::string s(to_string(r.reason));
    if (r.reason == StopReason::TestExit) s += fmt::format(" {}", r.code);
    if (!r.detail.empty()) s += ": " + r.detail;
    return s;
}

// Process-wide actions carry no guest; every other one needs one.
bool needs_guest(const ActionBody& b) {
    return !std::holds_alternative<action::ControllerModeSet>(b) && !std::holds_alternative<action::ControllerLimitsSet>(b);
}

}  // namespace

Host::Host(HostConfig config)
    : config_(std::move(config)),
      controller_mode_(config_.controller_mode),
      limits_(config_.controller_limits),
      started_(std::chrono::steady_clock::now()) {}

Host::~Host() {
    controller_.reset();  // first: it reads guests through the loop and submits actions
    // Guests first (their threads), then the endpoints and the loop. A
    // guest built but never started (create() failed) has nothing to stop.
    for (auto& g : guests_)
        if (g->live() && g->starts() > 0) {
            if (int fd = g->stop_fd(); fd >= 0) loop_->remove(fd);
            g->poweroff("vireo is exiting");
        }
    guests_.clear();
    metrics_.reset();
    control_.reset();
    handler_.reset();
    if (signal_fd_ && loop_) loop_->remove(signal_fd_.get());
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

std::expected<std::unique_ptr<Host>, BuildError> Host::create(HostConfig config) {
    auto bad = [](std::string m) { return std::unexpected(BuildError{true, std::move(m)}); };
    auto host_err = [](std::string m) { return std::unexpected(BuildError{false, std::move(m)}); };
    std::unique_ptr<Host> h(new Host(std::move(config)));
    // Until everything is up, info lines are held back: bad input is the
    // one line that says what is wrong, not the tail of a start-up log.
    HeldLog held;

    // SIGINT/SIGTERM/SIGHUP become an orderly stop, read through a
    // signalfd: blocked before any thread starts, so every thread inherits it.
    sigset_t sigs;
    sigemptyset(&sigs);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sigs, s);
    ::pthread_sigmask(SIG_BLOCK, &sigs, &h->old_mask_);
    h->signal_fd_.reset(::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!h->signal_fd_) return host_err(fmt::format("signalfd: {}", std::strerror(errno)));

    auto loop = EventLoop::create();
    if (!loop) return host_err(loop.error());
    h->loop_ = std::move(*loop);

    auto allowed = thread_affinity(0);
    if (!allowed) return host_err(allowed.error());
    h->allowed_ = *allowed;
    auto online = online_cpus();

    // Names are unique and pinning names CPUs that exist and that we may use.
    for (size_t i = 0; i < h->config_.guests.size(); ++i) {
        const GuestConfig& gc = h->config_.guests[i];
        for (size_t j = 0; j < i; ++j)
            if (h->config_.guests[j].name() == gc.name()) return bad(fmt::format("guest '{}': the name is used twice", gc.name()));
        for (const auto& [vcpu, cpus] : gc.pinning)
            for (unsigned c : cpus) {
                if (online && !std::binary_search(online->begin(), online->end(), c))
                    return bad(fmt::format("guest '{}': 'pin': vCPU {}: host CPU {} does not exist or is offline (online: {})",
                                           gc.name(), vcpu, c, format_cpu_list(*online)));
                if (!std::binary_search(h->allowed_.begin(), h->allowed_.end(), c))
                    return bad(fmt::format("guest '{}': 'pin': vCPU {}: host CPU {} is not allowed for this process (allowed: {})",
                                           gc.name(), vcpu, c, format_cpu_list(h->allowed_)));
            }
    }

    if (auto r = h->open_endpoints(); !r) return std::unexpected(r.error());

    Host* self = h.get();
    for (const auto& gc : h->config_.guests)
        h->guests_.push_back(std::make_unique<Guest>(gc, h->allowed_, [self](Guest& g, GuestState from, GuestState to,
                                                                             const std::string& why) {
            self->on_state_change(g, from, to, why);
        }));
    // Every guest is built before any starts: a bad kernel or disk of the
    // last guest leaves the first one unstarted too, and the error is the
    // only line printed (the others' start-up lines are held back).
    for (auto& g : h->guests_)
        if (auto r = g->build(); !r) {
            BuildError e = r.error();
            if (h->guests_.size() > 1) e.message = fmt::format("guest '{}': {}", g->name(), e.message);
            return std::unexpected(e);
        }
    held.commit();
    // With --user, drop to that user; then the control thread's
    // seccomp filter, which every guest thread started below inherits.
    if (auto r = security::lock_down(); !r) return host_err(r.error());
    for (auto& g : h->guests_) h->start_guest(*g);
    h->loop_->after(kHealthInterval, [self] { self->health_tick(); });
    // Always there (the mode can change over the socket); idle while every guest is off.
    controller::ControllerOptions copts;
    copts.tick = h->config_.controller_tick;
    if (h->config_.controller_balloon_warmup_s) copts.balloon.warmup_s = *h->config_.controller_balloon_warmup_s;
    h->controller_ = std::make_unique<controller::ControllerThread>(*h, std::move(copts));
    // Initial pinning is an action like any other: logged, undoable.
    for (auto& g : h->guests_)
        for (const auto& [vcpu, cpus] : g->config().pinning)
            h->decisions_.append(ActionRecord{.time_ns = realtime_ns(),
                                              .action = {g->name(), action::Pin{vcpu, cpus}},
                                              .origin = {ActionSource::Config, "config", "pinning from the config file"},
                                              .outcome = Outcome::Applied,
                                              .error = {},
                                              .undo = {Action{g->name(), action::Unpin{vcpu}}}});
    return h;
}

std::expected<void, BuildError> Host::open_endpoints() {
    handler_ = std::make_unique<control::RequestHandler>(*this);
    if (config_.control_path != "none") {
        if (config_.control_path.empty()) control::remove_stale_sockets();
        std::string path = config_.control_path.empty()
                               ? control::default_control_path(config_.name.empty() ? fmt::format("{}", ::getpid()) : config_.name)
                               : config_.control_path;
        control::RequestHandler* handler = handler_.get();
        auto server = control::ControlServer::listen(
            *loop_, path,
            {[handler](control::ControlServer::ClientId id, const control::PeerCred& peer, std::string_view line) {
                 handler->on_line(id, peer, line);
             },
             [handler](control::ControlServer::ClientId id) { handler->on_close(id); }});
        // A path we cannot use is the user's to fix (exit 2), like a bad option.
        if (!server) return std::unexpected(BuildError{true, server.error()});
        control_ = std::move(*server);
        handler_->attach(*control_);
        // `vireo run` stays as quiet as before; a host says where its door is.
        if (config_.exit_when_all_stopped) log_debug("control socket: {}", control_->path());
        else log_info("control socket: {}", control_->path());
    }
    if (!config_.metrics_listen.empty()) {
        auto m = MetricsListener::listen(*loop_, config_.metrics_listen, [this] { return render_metrics(*this); });
        if (!m) return std::unexpected(BuildError{true, m.error()});
        metrics_ = std::move(*m);
        log_info("metrics: http://{}/metrics", metrics_->address());
    }
    if (auto r = loop_->add(signal_fd_.get(), EPOLLIN, [this](uint32_t) { on_signal(); }); !r)
        return std::unexpected(BuildError{false, r.error()});
    return {};
}

Guest* Host::find(std::string_view name) {
    for (auto& g : guests_)
        if (g->name() == name) return g.get();
    return nullptr;
}

void Host::on_state_change(Guest& g, GuestState from, GuestState to, const std::string& why) {
    bus_.publish("state", g.name(), {{"from", std::string(to_string(from))}, {"to", std::string(to_string(to))}, {"why", why}});
}

void Host::start_guest(Guest& g) {
    g.start();
    // Once per guest: a KVM without binary stats cannot tell a halted vCPU
    // from a spinning one, so hang detection would only cry wolf.
    if (g.config().hang.enabled && g.starts() == 1 && g.machine() && !g.machine()->can_detect_hangs())
        log_warn("guest {}: hang detection off: this KVM has no binary stats (halt_wakeup, blocking)", g.name());
    Guest* gp = &g;
    if (auto r = loop_->add(g.stop_fd(), EPOLLIN, [this, gp](uint32_t) { on_guest_stopped(*gp); }); !r) {
        log_error("guest {}: {}; powering it off", g.name(), r.error());
        g.poweroff("cannot watch it");
    }
}

void Host::on_guest_stopped(Guest& g) { stop_guest(g, std::nullopt); }

void Host::stop_guest(Guest& g, const std::optional<std::string>& poweroff_why, bool restarting) {
    if (!g.live()) return;
    loop_->remove(g.stop_fd());  // before the machine (and its eventfd) goes
    report_restart_latency(g);    // a guest may stop before the health tick saw it run
    if (auto t = shutdown_timers_.find(&g); t != shutdown_timers_.end()) {
        loop_->cancel(t->second);
        shutdown_timers_.erase(t);
    }
    StopRequest req = poweroff_why ? g.poweroff(*poweroff_why) : g.collect_stop();
    last_stop_ = req;
    int status = exit_status_for(req);
    bus_.publish("stop", g.name(),
                 {{"reason", std::string(to_string(req.reason))}, {"exit_status", status}, {"detail", req.detail}});
    if (is_fault(req.reason))
        bus_.publish("fault", g.name(), {{"kind", std::string(to_string(req.reason))}, {"evidence", req.detail}});
    if (restarting) return;
    if (!exiting_) supervise(g, req);
    // `vireo run`: done once no guest runs or waits to be restarted.
    if (config_.exit_when_all_stopped && std::none_of(guests_.begin(), guests_.end(), [](const auto& x) {
            return x->live() || x->state() == GuestState::Backoff;
        }))
        loop_->stop();
}

void Host::supervise(Guest& g, const StopRequest& req) {
    auto now = std::chrono::steady_clock::now();
    StopKind kind = stop_kind(req);
    RestartDecision d = g.backoff.on_stop(kind, now);
    std::string cause = describe(req);
    const RestartPolicy& policy = g.config().restart;
    switch (d.kind) {
        case RestartDecision::Kind::Stay:
            if (policy.mode != RestartMode::Never && kind != StopKind::Operator)
                log_info("guest {}: not restarted: {}", g.name(), d.why);
            return;
        case RestartDecision::Kind::Fail: {
            unsigned failures = g.backoff.failures_in_window(now);
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
                  {"attempt", g.backoff.consecutive_restarts()},
                  {"failures_in_window", g.backoff.failures_in_window(now)}});
    Guest* gp = &g;
    auto restart = [this, gp, cause, delay = d.delay](std::chrono::steady_clock::time_point detected_at) {
        gp->set_restart_detected_at(detected_at);
        gp->scheduled_delay = delay;
        apply(Action{gp->name(), action::Restart{}}, Origin{ActionSource::Supervisor, "restart-policy", cause});
    };
    if (d.delay.count() == 0) {
        restart(req.at != std::chrono::steady_clock::time_point{} ? req.at : now);
        return;
    }
    log_info("guest {}: {}; restarting in {:.1f} s", g.name(), cause, d.delay.count() / 1000.0);
    g.set_state(GuestState::Backoff, d.why);
    g.restart_due = now + d.delay;
    restart_timers_[&g] = loop_->after(d.delay, [this, gp, restart] {
        restart_timers_.erase(gp);
        // The back-off is the policy's; the latency measured is vireo's own.
        restart(std::chrono::steady_clock::now());
    });
}

void Host::report_restart_latency(Guest& g) {
    if (g.restarts() <= reported_restarts_[&g]) return;
    if (auto latency = g.restart_latency()) {
        reported_restarts_[&g] = g.restarts();
        log_info("guest {}: restart {} took {:.1f} ms from the fault's detection to its first instruction", g.name(),
                 g.restarts(), double(latency->count()) / 1e6);
    }
}

void Host::cancel_restart(Guest& g) {
    if (auto t = restart_timers_.find(&g); t != restart_timers_.end()) {
        loop_->cancel(t->second);
        restart_timers_.erase(t);
    }
    g.restart_due.reset();
}

void Host::health_tick() {
    auto now = std::chrono::steady_clock::now();
    uint64_t now_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
    for (auto& g : guests_) {
        Machine* m = g->machine();
        if (!m || g->state() != GuestState::Running || m->stop().stop_requested()) continue;
        report_restart_latency(*g);
        if (const Ib700Watchdog* w = m->watchdog())
            if (auto evidence = w->expired(now_ns)) {
                m->stop().request_stop({StopReason::Watchdog, 0, *evidence});
                continue;
            }
        if (g->config().hang.enabled && m->can_detect_hangs())
            if (auto evidence = g->hang.sample(now, m->health())) m->stop().request_stop({StopReason::Hang, 0, *evidence});
    }
    loop_->after(kHealthInterval, [this] { health_tick(); });
}

std::expected<void, Error> Host::restart_guest(Guest& g, const std::string& why) {
    cancel_restart(g);
    if (g.live()) {
        stop_guest(g, why, /*restarting=*/true);
        g.set_restart_detected_at(std::chrono::steady_clock::now());
    }
    if (auto r = g.build(); !r) {
        g.set_state(GuestState::Stopped, "restart failed: " + r.error().message);
        bus_.publish("restart", g.name(), {{"ok", false}, {"error", r.error().message}, {"why", why}});
        return std::unexpected(err(r.error().bad_input ? ErrorCode::Conflict : ErrorCode::Internal,
                                   fmt::format("guest {} could not be started again: {}", g.name(), r.error().message)));
    }
    start_guest(g);
    bus_.publish("restart", g.name(), {{"ok", true}, {"restarts", g.restarts()}, {"why", why}});
    return {};
}

void Host::on_signal() {
    signalfd_siginfo si{};
    if (::read(signal_fd_.get(), &si, sizeof si) != ssize_t(sizeof si)) return;
    std::string why = fmt::format("signal {} ({})", si.ssi_signo, strsignal(int(si.ssi_signo)));
    bus_.publish("signal", "", {{"signal", si.ssi_signo}, {"action", "stopping every guest and exiting"}});
    exiting_ = true;
    for (auto& g : guests_)
        if (g->live()) stop_guest(*g, why);
    loop_->stop();
}

int Host::run() {
    if (config_.exit_when_all_stopped && std::none_of(guests_.begin(), guests_.end(), [](const auto& g) { return g->live(); }))
        return last_stop_ ? exit_status_for(*last_stop_) : VIREO_EXIT_OK;
    loop_->run();
    for (auto& g : guests_)
        if (g->live()) stop_guest(*g, std::string("vireo is exiting"));
    if (config_.exit_when_all_stopped && last_stop_) return exit_status_for(*last_stop_);
    return VIREO_EXIT_OK;
}

std::future<ActionResult> Host::submit(Action action, Origin origin) {
    auto promise = std::make_shared<std::promise<ActionResult>>();
    auto future = promise->get_future();
    loop_->post([this, promise, a = std::move(action), o = std::move(origin)] { promise->set_value(apply(a, o)); });
    return future;
}

ActionResult Host::apply(const Action& a, const Origin& o) {
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
    uint64_t seq = decisions_.append(rec);
    ++action_counts_[{o.source, std::string(action_name(a.body)), rec.outcome}];
    nlohmann::json data = to_json(*decisions_.find(seq));
    bus_.publish("action", a.guest, std::move(data));
    return {rec.outcome, rec.error, seq};
}

std::expected<void, Error> Host::check_controller_limits(Guest& g, const Action& a) {
    auto now = std::chrono::steady_clock::now();
    // The controller paces its changes by its snapshots' clock; the
    // actuator measures from when a change was applied. A decision is
    // applied a variable time after its snapshot (milliseconds natively,
    // more under emulation), so "10 s after the last change" by the
    // controller's clock can be 9.998 s here: half a second of slack keeps
    // such changes from being refused every other time (seen in the QEMU
    // L1: half the reclaim steps refused) without loosening the limit.
    constexpr auto kIntervalSlack = std::chrono::milliseconds(500);
    auto hit = [&](const std::string& limit, std::string message) {
        ++limit_hits_[limit];
        log_info("controller: {} refused by limit {}: {}", g.name(), limit, message);
        return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("limit {}: {}", limit, message)));
    };
    if (auto* b = std::get_if<action::BalloonTarget>(&a.body)) {
        // Giving memory back is never limited: a guest under
        // pressure, after a deflate-on-OOM or asking for more gets it at
        // once. The limits pace reclaim only.
        if (b->bytes < g.balloon_target()) return {};
        uint64_t mem = g.config().machine.mem_bytes;
        uint64_t floor = limits_.balloon_floor_mib << 20;
        if (b->bytes + floor > mem)
            return hit("balloon_floor_mib", fmt::format("target {} MiB would leave guest {} less than {} MiB", b->bytes >> 20,
                                                        g.name(), limits_.balloon_floor_mib));
        uint64_t cur = g.balloon_target();
        uint64_t step = b->bytes > cur ? b->bytes - cur : cur - b->bytes;
        if (step * 100 > uint64_t(limits_.balloon_step_percent) * mem)
            return hit("balloon_step_percent", fmt::format("a step of {} MiB is over {}% of {} MiB", step >> 20,
                                                           limits_.balloon_step_percent, mem >> 20));
        if (g.last_balloon_change != std::chrono::steady_clock::time_point{} &&
            now - g.last_balloon_change + kIntervalSlack < std::chrono::seconds(limits_.balloon_interval_s))
            return hit("balloon_interval_s", fmt::format("the last change was less than {} s ago", limits_.balloon_interval_s));
    }
    if (auto* p = std::get_if<action::Pin>(&a.body)) {
        if (p->vcpu < g.last_pin_change.size() && g.last_pin_change[p->vcpu] != std::chrono::steady_clock::time_point{} &&
            now - g.last_pin_change[p->vcpu] + kIntervalSlack < std::chrono::seconds(limits_.pin_interval_s))
            return hit("pin_interval_s", fmt::format("vCPU {} was re-pinned less than {} s ago", p->vcpu, limits_.pin_interval_s));
    }
    return {};
}

std::expected<Outcome, Error> Host::execute(const Action& a, const Origin& o, std::vector<Action>& undo) {
    Guest* g = nullptr;
    if (needs_guest(a.body)) {
        if (a.guest.empty()) return std::unexpected(err(ErrorCode::BadRequest, fmt::format("{} needs a guest", action_name(a.body))));
        g = find(a.guest);
        if (!g) return std::unexpected(err(ErrorCode::UnknownGuest, fmt::format("no guest named '{}'", a.guest)));
    } else if (!a.guest.empty()) {
        return std::unexpected(err(ErrorCode::BadRequest, fmt::format("{} is process-wide; it takes no guest", action_name(a.body))));
    }

    // The controller acts only as far as its mode, the administrator's
    // held levers and the hard limits let it.
    if (o.source == ActionSource::Controller) {
        if (!g)
            return std::unexpected(err(ErrorCode::Conflict, "the controller may not change its own mode or limits"));
        if (std::holds_alternative<action::GuestControlSet>(a.body))
            return std::unexpected(err(ErrorCode::Conflict, "the controller may not change a guest's overrides"));
        ControllerMode mode = g->control.mode.value_or(controller_mode_);
        if (mode == ControllerMode::Off)
            return std::unexpected(err(ErrorCode::Conflict, fmt::format("the controller is off for guest {}", g->name())));
        bool pin = std::holds_alternative<action::Pin>(a.body) || std::holds_alternative<action::Unpin>(a.body);
        bool balloon = std::holds_alternative<action::BalloonTarget>(a.body);
        if ((pin && g->control.pin_held) || (balloon && g->control.balloon_held))
            return std::unexpected(err(ErrorCode::Conflict, fmt::format("an administrator holds the {} of guest {} (release it with "
                                                                        "the controller request)",
                                                                        pin ? "pinning" : "balloon", g->name())));
        if (auto r = check_controller_limits(*g, a); !r) return std::unexpected(r.error());
        if (mode == ControllerMode::Advise) return Outcome::Advised;
    }

    auto now = std::chrono::steady_clock::now();
    auto done = [](std::expected<void, Error> r) -> std::expected<Outcome, Error> {
        if (!r) return std::unexpected(r.error());
        return Outcome::Applied;
    };
    return std::visit(
        overloaded{
            [&](const action::Pause&) {
                auto r = g->pause();
                if (r) undo = {Action{g->name(), action::Resume{}}};
                return done(r);
            },
            [&](const action::Resume&) {
                auto r = g->resume();
                if (r) {
                    undo = {Action{g->name(), action::Pause{}}};
                    g->hang.reset(now);  // the pause was not a hang
                }
                return done(r);
            },
            [&](const action::Shutdown& s) {
                auto r = g->press_power_button();
                if (r) {
                    Guest* gp = g;
                    auto timeout = s.timeout.count() ? s.timeout : g->config().shutdown_timeout;
                    shutdown_timers_[g] = loop_->after(timeout, [this, gp, timeout] {
                        shutdown_timers_.erase(gp);
                        if (!gp->live()) return;
                        apply(Action{gp->name(), action::Poweroff{}},
                              Origin{ActionSource::Supervisor, "shutdown",
                                     fmt::format("still running {} ms after the ACPI power button", timeout.count())});
                    });
                }
                return done(r);
            },
            [&](const action::Poweroff&) -> std::expected<Outcome, Error> {
                if (g->state() == GuestState::Backoff) {  // waiting to restart: stay stopped instead
                    cancel_restart(*g);
                    g->set_state(GuestState::Stopped, fmt::format("restart cancelled by {}", to_string(o.source)));
                    return Outcome::Applied;
                }
                if (!g->live())
                    return std::unexpected(err(ErrorCode::Conflict, fmt::format("guest {} is {}, not running", g->name(),
                                                                                to_string(g->state()))));
                std::string why = fmt::format("poweroff by {}{}", to_string(o.source), o.reason.empty() ? "" : ": " + o.reason);
                stop_guest(*g, why);
                return Outcome::Applied;
            },
            [&](const action::Restart&) {
                std::string why = fmt::format("restart by {}{}", to_string(o.source), o.reason.empty() ? "" : ": " + o.reason);
                // Anyone but the policy itself restarting a guest (an
                // administrator bringing back a failed one) starts its
                // back-off over.
                if (o.source != ActionSource::Supervisor) g->backoff.reset();
                std::string cause = o.source == ActionSource::Supervisor && g->last_stop()
                                        ? std::string(to_string(g->last_stop()->reason))
                                        : std::string(to_string(o.source));
                auto delay = std::exchange(g->scheduled_delay, std::chrono::milliseconds(0));
                if (o.source != ActionSource::Supervisor) g->set_restart_detected_at(now);
                auto r = restart_guest(*g, why);
                if (r) {
                    g->record_restart({realtime_ns(), o.reason.empty() ? why : o.reason, delay.count(), std::string(to_string(o.source))});
                    ++g->restarts_by_reason[cause];
                }
                return done(r);
            },
            [&](const action::Pin& p) {
                std::optional<CpuList> before = p.vcpu < g->pinning().size() ? g->pinning()[p.vcpu] : std::nullopt;
                auto r = g->pin(p.vcpu, p.cpus);
                if (r) {
                    undo = {before ? Action{g->name(), action::Pin{p.vcpu, *before}} : Action{g->name(), action::Unpin{p.vcpu}}};
                    g->last_pin_change[p.vcpu] = now;
                    if (o.source == ActionSource::Admin) g->control.pin_held = true;
                }
                return done(r);
            },
            [&](const action::Unpin& u) {
                auto before = g->pinning();
                auto r = g->unpin(u.vcpu);
                if (r) {
                    for (unsigned i = 0; i < before.size(); ++i)
                        if (before[i] && (!u.vcpu || *u.vcpu == i)) {
                            undo.push_back(Action{g->name(), action::Pin{i, *before[i]}});
                            g->last_pin_change[i] = now;
                        }
                    if (o.source == ActionSource::Admin) g->control.pin_held = true;
                }
                return done(r);
            },
            [&](const action::BalloonTarget& b) {
                uint64_t before = g->balloon_target();
                auto r = g->set_balloon_target(b.bytes);
                if (r) {
                    undo = {Action{g->name(), action::BalloonTarget{before}}};
                    g->last_balloon_change = now;
                    if (o.source == ActionSource::Admin) g->control.balloon_held = true;
                }
                return done(r);
            },
            [&](const action::ControllerModeSet& m) -> std::expected<Outcome, Error> {
                undo = {Action{"", action::ControllerModeSet{controller_mode_}}};
                controller_mode_ = m.mode;
                return Outcome::Applied;
            },
            [&](const action::ControllerLimitsSet& l) -> std::expected<Outcome, Error> {
                if (l.limits.balloon_step_percent > 100)
                    return std::unexpected(err(ErrorCode::OutOfRange, "balloon_step_percent is over 100"));
                undo = {Action{"", action::ControllerLimitsSet{limits_}}};
                limits_ = l.limits;
                return Outcome::Applied;
            },
            [&](const action::GuestControlSet& c) -> std::expected<Outcome, Error> {
                undo = {Action{g->name(), action::GuestControlSet{g->control}}};
                g->control = c.control;
                return Outcome::Applied;
            },
        },
        a.body);
}

}  // namespace vireo
