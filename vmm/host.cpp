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
#include "vmm/agent_runner/agent_thread.h"
#include "vmm/agent_runner/host_gather.h"
#include "vmm/log.h"
#include "vmm/metrics/host_metrics.h"
#include "vmm/metrics/metrics_listener.h"
#include "vmm/security/privileges.h"
#include "vmm/wall_time.h"

namespace vireo {

namespace {

Error err(ErrorCode code, std::string message) { return {code, std::move(message)}; }

// The actuator only hands back guests that find() gave it, all of them ours.
Guest& ours(ActuatedGuest& g) { return static_cast<Guest&>(g); }

}  // namespace

Host::Host(HostConfig config)
    : config_(std::move(config)),
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
    // Other threads (the controller's, through the actuator and directly)
    // reach the host by posting tasks to its loop.
    EventLoop* lp = h->loop_.get();
    auto post_to_loop = [lp](std::function<void()> task) { lp->post(std::move(task)); };
    EventBus* bus = &h->bus_;
    h->actuator_ = std::make_unique<GuestActuator>(
        *h,
        GuestActuator::Hooks{.post = post_to_loop,
                             .decided = [bus](const ActionRecord& rec) { bus->publish("action", rec.action.guest, to_json(rec)); }},
        h->config_.controller_mode, h->config_.controller_limits);
    Host* self = h.get();
    h->supervisor_ = std::make_unique<Supervisor>(
        h->bus_, Supervisor::Hooks{.now = [] { return std::chrono::steady_clock::now(); },
                                   .realtime_ns = realtime_ns,
                                   .after = [lp](std::chrono::milliseconds d, std::function<void()> fn) { return lp->after(d, std::move(fn)); },
                                   .cancel = [lp](EventLoop::TimerId id) { lp->cancel(id); },
                                   .restart = [self](SupervisedGuest& g, const std::string& cause) {
                                       self->actuator_->apply(Action{g.name(), action::Restart{}},
                                                              Origin{ActionSource::Supervisor, "restart-policy", cause});
                                   }});

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

    for (const auto& gc : h->config_.guests)
        if (gc.controller_mode) h->actuator_->set_initial_control(gc.name(), GuestControl{.mode = gc.controller_mode});
    for (const auto& gc : h->config_.guests)
        h->guests_.push_back(std::make_unique<Guest>(gc, h->allowed_, [self](Guest& g, GuestState from, GuestState to,
                                                                             const std::string& why) {
            self->on_state_change(g, from, to, why);
        }));
    for (auto& g : h->guests_) h->supervisor_->add(*g, g->config().restart, g->config().hang);
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
    h->supervisor_->start_health_checks();
    // Always there (the mode can change over the socket); idle while every guest is off.
    agent_runner::AgentThreadOptions copts;
    copts.tick = h->config_.controller_tick;
    if (h->config_.controller_balloon_warmup_s) copts.balloon.warmup_s = *h->config_.controller_balloon_warmup_s;
    h->controller_ = std::make_unique<agent_runner::AgentThread>(
        agent_runner::HostAccess{.post = post_to_loop,
                               .gather = [self] { return agent_runner::gather_from_host(*self->actuator_, self->guests_, self->allowed_); },
                               .actuator = *h->actuator_},
        std::move(copts));
    // Initial pinning is an action like any other: logged, undoable.
    for (auto& g : h->guests_)
        for (const auto& [vcpu, cpus] : g->config().pinning)
            h->actuator_->record_applied({g->name(), action::Pin{vcpu, cpus}},
                                         {ActionSource::Config, "config", "pinning from the config file"},
                                         {Action{g->name(), action::Unpin{vcpu}}});
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

EndpointStats Host::endpoint_stats() const {
    EndpointStats out;
    if (control_) {
        const auto& st = control_->stats();
        EndpointStats::Control c{.path = control_->path(),
                                 .clients = control_->client_count(),
                                 .accepted = st.accepted,
                                 .lines = st.lines,
                                 .refused_peers = st.refused_peers,
                                 .refused_full = st.refused_full,
                                 .oversize = st.oversize,
                                 .dropped_slow = st.dropped_slow};
        if (handler_) {
            c.requests = handler_->requests();
            c.errors.insert(handler_->errors().begin(), handler_->errors().end());
        }
        out.control = std::move(c);
    }
    if (metrics_)
        out.metrics = EndpointStats::Metrics{.address = metrics_->address(),
                                             .scrapes = metrics_->stats().scrapes,
                                             .refused = metrics_->stats().refused + metrics_->stats().bad};
    return out;
}

void Host::on_state_change(Guest& g, GuestState from, GuestState to, const std::string& why) {
    bus_.publish("state", g.name(), {{"from", std::string(to_string(from))}, {"to", std::string(to_string(to))}, {"why", why}});
}

void Host::start_guest(Guest& g) {
    g.start();
    supervisor_->started(g);
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
    supervisor_->report_restart_latency(g);  // a guest may stop before the health check saw it run
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
    if (!exiting_) supervisor_->stopped(g, req);
    // `vireo run`: done once no guest runs or waits to be restarted.
    if (config_.exit_when_all_stopped && std::none_of(guests_.begin(), guests_.end(), [](const auto& x) {
            return x->live() || x->state() == GuestState::Backoff;
        }))
        loop_->stop();
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

std::expected<void, Error> Host::shutdown(ActuatedGuest& ag, std::chrono::milliseconds timeout) {
    Guest& g = ours(ag);
    auto r = g.press_power_button();
    if (!r) return r;
    if (timeout.count() == 0) timeout = g.config().shutdown_timeout;
    Guest* gp = &g;
    shutdown_timers_[gp] = loop_->after(timeout, [this, gp, timeout] {
        shutdown_timers_.erase(gp);
        if (!gp->live()) return;
        actuator_->apply(Action{gp->name(), action::Poweroff{}},
                         Origin{ActionSource::Supervisor, "shutdown",
                                fmt::format("still running {} ms after the ACPI power button", timeout.count())});
    });
    return {};
}

std::expected<void, Error> Host::poweroff(ActuatedGuest& ag, const Origin& o) {
    Guest& g = ours(ag);
    if (g.state() == GuestState::Backoff) {  // waiting to restart: stay stopped instead
        supervisor_->cancel_restart(g);
        g.set_state(GuestState::Stopped, fmt::format("restart cancelled by {}", to_string(o.source)));
        return {};
    }
    if (!g.live())
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("guest {} is {}, not running", g.name(), to_string(g.state()))));
    stop_guest(g, fmt::format("poweroff by {}{}", to_string(o.source), o.reason.empty() ? "" : ": " + o.reason));
    return {};
}

std::expected<void, Error> Host::restart(ActuatedGuest& ag, const Origin& o) {
    Guest& g = ours(ag);
    return supervisor_->restart(g, o, [&](const std::string& why) -> std::expected<void, Error> {
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
    });
}

void Host::resumed(ActuatedGuest& ag) { supervisor_->resumed(ours(ag)); }

}  // namespace vireo
