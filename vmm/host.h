// The vireo process: guests by name, the control thread's event loop (the
// main thread), the control socket, the metrics listener, the event bus,
// and the wiring between the guests, the actuator every change goes
// through (vmm/actuator/) and the restart supervisor (vmm/supervisor/).
//
// `vireo run` is a host of one guest that exits when the guest stops, with
// the guest's exit status; `vireo host --config FILE` runs several and keeps
// serving until a signal. Same code path.
//
// Threads: this one (epoll: signalfd, each guest's stop eventfd, sockets,
// timers, tasks posted by other threads), plus each guest's vCPU and I/O
// threads. All state here is touched on this thread only; other threads
// (the learned controller) reach it through the actuator's submit(), which
// posts to the loop and resolves a future.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vireo/actions.h"
#include "vmm/action_log.h"
#include "vmm/actuator/guest_actuator.h"
#include "vmm/control/control_server.h"
#include "vmm/event_bus.h"
#include "vmm/event_loop.h"
#include "vmm/guest.h"
#include "vmm/guest_config.h"
#include "vmm/host_view.h"
#include "vmm/machine.h"
#include "vmm/supervisor/supervisor.h"

namespace vireo {

class MetricsListener;
namespace control {
class RequestHandler;
}
namespace agent_runner {
class AgentThread;
}

class Host final : public GuestRegistry, public HostView {
public:
    // Checks everything (pinning against this host's CPUs, the control
    // path, the metrics address), builds every guest, then starts them all:
    // on any error nothing is started. bad_input: exit status 2.
    static std::expected<std::unique_ptr<Host>, BuildError> create(HostConfig config);
    ~Host() override;

    // Serves until a signal (or, with exit_when_all_stopped, until every
    // guest has stopped); returns the process exit status.
    int run();

    // HostView: the actuator (every change goes through it; control
    // thread only, except its submit()), the supervisor's restart state of
    // each guest, and what the request handler and the metrics read.
    GuestActuator& actuator() override { return *actuator_; }
    const GuestActuator& actuator() const override { return *actuator_; }
    const Supervisor& supervisor() const override { return *supervisor_; }
    const std::vector<std::unique_ptr<Guest>>& guests() const override { return guests_; }
    EventBus& bus() override { return bus_; }
    const EventBus& bus() const override { return bus_; }
    std::string_view name() const override { return config_.name; }
    std::chrono::steady_clock::time_point started() const override { return started_; }
    const CpuList& allowed_cpus() const override { return allowed_; }
    EndpointStats endpoint_stats() const override;

    // GuestRegistry (what the actuator asks of the guests' owner) and
    // HostView: a guest by name.
    Guest* find(std::string_view name) override;
    std::expected<void, Error> shutdown(ActuatedGuest& g, std::chrono::milliseconds timeout) override;
    std::expected<void, Error> poweroff(ActuatedGuest& g, const Origin& o) override;
    std::expected<void, Error> restart(ActuatedGuest& g, const Origin& o) override;
    void resumed(ActuatedGuest& g) override;

private:
    explicit Host(HostConfig config);
    std::expected<void, BuildError> open_endpoints();
    void start_guest(Guest& g);
    // Takes a live guest down (poweroff if `why`, else it already stopped)
    // and reports it; then what follows a stop (run-mode exit, the
    // supervisor).
    void stop_guest(Guest& g, const std::optional<std::string>& poweroff_why, bool restarting = false);
    void on_guest_stopped(Guest& g);
    void on_signal();
    void on_state_change(Guest& g, GuestState from, GuestState to, const std::string& why);

    HostConfig config_;
    std::unique_ptr<EventLoop> loop_;
    CpuList allowed_;
    std::vector<std::unique_ptr<Guest>> guests_;
    EventBus bus_;
    std::unique_ptr<GuestActuator> actuator_;
    std::unique_ptr<Supervisor> supervisor_;
    std::map<const Guest*, EventLoop::TimerId> shutdown_timers_;
    std::unique_ptr<control::RequestHandler> handler_;
    std::unique_ptr<control::ControlServer> control_;
    std::unique_ptr<MetricsListener> metrics_;
    UniqueFd signal_fd_;
    sigset_t old_mask_{};
    std::chrono::steady_clock::time_point started_;
    std::optional<StopRequest> last_stop_;  // run mode: the exit status
    bool exiting_ = false;
    std::unique_ptr<agent_runner::AgentThread> controller_;  // the learned controller's thread
};

}  // namespace vireo
