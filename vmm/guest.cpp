#include "vmm/guest.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "vmm/devices/ib700_watchdog.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/log.h"

namespace vireo {

namespace {
Error err(ErrorCode code, std::string message) { return {code, std::move(message)}; }
}  // namespace

Guest::Guest(GuestConfig config, CpuList allowed, StateListener listener)
    : config_(std::move(config)),
      allowed_(std::move(allowed)),
      listener_(std::move(listener)) {
    pins_.resize(config_.machine.cpus);
    for (const auto& [vcpu, cpus] : config_.pinning)
        if (vcpu < pins_.size()) pins_[vcpu] = cpus;
}

Guest::~Guest() {
    // Built but never started (another guest failed to build): nothing ran,
    // so there is no stop to report.
    if (machine_ && starts_ == 0 && state_ == GuestState::Starting) machine_.reset();
    if (machine_) poweroff("vireo is exiting");
}

void Guest::set_state(GuestState to, const std::string& why) {
    GuestState from = state_;
    if (from == to) return;
    state_ = to;
    if (listener_) listener_(*this, from, to, why);
}

std::expected<void, BuildError> Guest::build() {
    auto m = Machine::build(config_.machine, std::chrono::steady_clock::now(), std::move(probes_));
    if (!m) return std::unexpected(m.error());
    machine_ = std::move(*m);
    set_state(GuestState::Starting, "built");
    return {};
}

void Guest::start() {
    if (!machine_) return;
    if (restart_detected_at_) restart_latency_.reset();
    machine_->start();
    ++starts_;
    started_at_ = std::chrono::steady_clock::now();
    final_telemetry_.reset();
    apply_pins();
    if (balloon_target_ && machine_->balloon())
        if (auto r = machine_->balloon()->set_target_bytes(balloon_target_); !r)
            log_warn("guest {}: balloon target: {}", name(), r.error());
    set_state(GuestState::Running, starts_ > 1 ? "restarted" : "started");
}

void Guest::apply_pins() {
    // The vCPU threads publish their tid first thing; wait for that (far
    // less than a millisecond unless the host is overloaded), so a running
    // guest's threads can always be named (`vcpus`) and pinned.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    const auto& runners = machine_->vcpus();
    for (const auto& r : runners)
        while (r->tid() == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    for (size_t i = 0; i < runners.size() && i < pins_.size(); ++i) {
        if (!pins_[i]) continue;
        if (runners[i]->tid() == 0) {
            log_warn("guest {}: vCPU {} thread did not start in time; not pinned", name(), i);
            continue;
        }
        if (auto r = set_thread_affinity(runners[i]->tid(), *pins_[i]); !r)
            log_warn("guest {}: vCPU {}: {}", name(), i, r.error());
    }
}

bool Guest::stop_requested() const { return machine_ && machine_->stop().stop_requested(); }

void Guest::request_stop(StopRequest request) {
    if (machine_) machine_->stop().request_stop(std::move(request));
}

std::optional<std::string> Guest::watchdog_expired(uint64_t now_ns) const {
    const Ib700Watchdog* w = machine_ ? machine_->watchdog() : nullptr;
    return w ? w->expired(now_ns) : std::nullopt;
}

int Guest::stop_fd() const { return machine_ ? machine_->stop().eventfd() : -1; }

StopRequest Guest::collect_stop() {
    if (!machine_) return last_stop_.value_or(StopRequest{StopReason::Operator, 0, "not running"});
    (void)restart_latency();  // keep the last value once the machine is gone
    StopRequest req = machine_->halt();
    machine_->report_stop(req);
    final_telemetry_ = machine_->telemetry();
    probes_ = machine_->take_probes();  // the next run reuses them: a faster restart
    machine_.reset();  // frees guest RAM, closes the VM, releases disk locks
    last_stop_ = req;
    std::string why = std::string(to_string(req.reason));
    if (!req.detail.empty()) why += ": " + req.detail;
    set_state(GuestState::Stopped, why);
    return req;
}

StopRequest Guest::poweroff(const std::string& why) {
    if (machine_) machine_->stop().request_stop({StopReason::Operator, 0, why});
    return collect_stop();
}

std::expected<void, Error> Guest::pause() {
    if (state_ != GuestState::Running)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("guest {} is {}, not running", name(), to_string(state_))));
    const auto& runners = machine_->vcpus();
    for (const auto& r : runners) r->pause();
    // A vCPU inside a device (the test guest's timed idle) parks when it
    // comes back; report paused only once none can run guest code.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (const auto& r : runners)
        if (!r->wait_parked(deadline)) {
            for (const auto& u : runners) u->resume();
            return std::unexpected(err(ErrorCode::Internal,
                                       fmt::format("guest {}: vCPU thread {} did not park within 2 s; resumed", name(),
                                                   r->thread_name())));
        }
    set_state(GuestState::Paused, "paused");
    return {};
}

std::expected<void, Error> Guest::resume() {
    if (state_ != GuestState::Paused)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("guest {} is {}, not paused", name(), to_string(state_))));
    for (const auto& r : machine_->vcpus()) r->resume();
    set_state(GuestState::Running, "resumed");
    return {};
}

std::expected<void, Error> Guest::press_power_button() {
    if (state_ != GuestState::Running)
        return std::unexpected(err(ErrorCode::Conflict, fmt::format("guest {} is {}, not running{}", name(), to_string(state_),
                                                                    state_ == GuestState::Paused ? " (resume it first)" : "")));
    if (!machine_->press_power_button())
        return std::unexpected(err(ErrorCode::Conflict,
                                   fmt::format("guest {} has not enabled the ACPI power button (no ACPI OS running?); "
                                               "use poweroff to stop it",
                                               name())));
    set_state(GuestState::Stopping, "ACPI power button pressed");
    return {};
}

std::expected<void, Error> Guest::check_vcpu(unsigned vcpu) const {
    if (vcpu >= config_.machine.cpus)
        return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("guest {} has no vCPU {} (it has {}: 0-{})", name(), vcpu,
                                                                      config_.machine.cpus, config_.machine.cpus - 1)));
    return {};
}

std::expected<void, Error> Guest::check_cpus(const CpuList& cpus) const {
    if (cpus.empty()) return std::unexpected(err(ErrorCode::OutOfRange, "the CPU list is empty"));
    auto online = online_cpus();
    for (unsigned c : cpus) {
        if (online && !std::binary_search(online->begin(), online->end(), c))
            return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("host CPU {} does not exist or is offline (online: {})", c,
                                                                          format_cpu_list(*online))));
        if (!std::binary_search(allowed_.begin(), allowed_.end(), c))
            return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("host CPU {} is not allowed for this process (allowed: {})",
                                                                          c, format_cpu_list(allowed_))));
    }
    return {};
}

std::expected<void, Error> Guest::pin(unsigned vcpu, const CpuList& cpus) {
    if (auto r = check_vcpu(vcpu); !r) return r;
    if (auto r = check_cpus(cpus); !r) return r;
    if (machine_ && vcpu < machine_->vcpus().size()) {
        pid_t tid = machine_->vcpus()[vcpu]->tid();
        if (tid > 0)
            if (auto r = set_thread_affinity(tid, cpus); !r) return std::unexpected(err(ErrorCode::Internal, r.error()));
    }
    pins_[vcpu] = cpus;
    return {};
}

std::expected<void, Error> Guest::unpin(std::optional<unsigned> vcpu) {
    if (vcpu)
        if (auto r = check_vcpu(*vcpu); !r) return r;
    unsigned lo = vcpu ? *vcpu : 0, hi = vcpu ? *vcpu + 1 : config_.machine.cpus;
    if (machine_) {
        for (unsigned i = lo; i < hi && i < machine_->vcpus().size(); ++i) {
            pid_t tid = machine_->vcpus()[i]->tid();
            if (tid > 0 && pins_[i])
                if (auto r = set_thread_affinity(tid, allowed_); !r) return std::unexpected(err(ErrorCode::Internal, r.error()));
        }
    }
    for (unsigned i = lo; i < hi; ++i) pins_[i].reset();
    return {};
}

std::expected<void, Error> Guest::set_balloon_target(uint64_t bytes) {
    if (!has_balloon())
        return std::unexpected(err(ErrorCode::Unavailable, fmt::format("guest {} has no balloon (configure \"balloon\")", name())));
    uint64_t mem = config_.machine.mem_bytes;
    if (bytes > mem)
        return std::unexpected(err(ErrorCode::OutOfRange, fmt::format("balloon target {} MiB is more than guest {}'s {} MiB of RAM",
                                                                      bytes >> 20, name(), mem >> 20)));
    if (machine_ && machine_->balloon())
        if (auto r = machine_->balloon()->set_target_bytes(bytes); !r)
            return std::unexpected(err(ErrorCode::OutOfRange, r.error()));
    balloon_target_ = bytes;
    return {};
}

std::optional<std::chrono::nanoseconds> Guest::restart_latency() const {
    if (!restart_latency_ && restart_detected_at_ && machine_ && !machine_->vcpus().empty()) {
        auto first = machine_->vcpus()[0]->first_entry();
        if (first != std::chrono::steady_clock::time_point{})
            restart_latency_ = std::chrono::duration_cast<std::chrono::nanoseconds>(first - *restart_detected_at_);
    }
    return restart_latency_;
}

}  // namespace vireo

