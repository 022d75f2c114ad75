// A supervised guest: its configuration, the Machine built from it (none
// while stopped), its state, and the levers the actuator pulls -- pause,
// resume, power button, poweroff, pinning, balloon target (the ones the
// actuator pulls directly are its ActuatedGuest interface).
//
// Control thread only. Each lever validates everything first and changes
// nothing on error (the Error says what and why); the actuator wraps
// them with the decision log and events (vmm/actuator/). The supervisor
// (vmm/supervisor/) watches it through its SupervisedGuest interface and
// moves it through the states of vmm/guest_state.h.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vireo/actions.h"
#include "vmm/actuator/actuated_guest.h"
#include "vmm/cpu_list.h"
#include "vmm/guest_config.h"
#include "vmm/guest_state.h"
#include "vmm/machine.h"
#include "vmm/supervisor/supervisor.h"

namespace vireo {

class Guest final : public ActuatedGuest, public SupervisedGuest {
public:
    // (guest, from, to, why): every state change, for the host's events.
    using StateListener = std::function<void(Guest&, GuestState, GuestState, const std::string&)>;

    // `allowed`: the host CPUs this process may use (pin targets, unpin).
    Guest(GuestConfig config, CpuList allowed, StateListener listener);
    ~Guest() override;
    Guest(const Guest&) = delete;
    Guest& operator=(const Guest&) = delete;

    const std::string& name() const override { return config_.machine.name; }
    uint64_t ram_bytes() const override { return config_.machine.mem_bytes; }
    const GuestConfig& config() const { return config_; }
    GuestState state() const override { return state_; }
    bool live() const { return machine_ != nullptr; }  // threads may run (starting..stopping)
    Machine* machine() { return machine_.get(); }
    const Machine* machine() const { return machine_.get(); }

    // Builds a Machine from the config (bad input or a host error; nothing
    // is left behind on failure). Stopped/Backoff/Failed -> Starting.
    std::expected<void, BuildError> build();
    // Starts the built machine, applies pinning and the balloon target.
    void start();
    // The stop eventfd of the running machine (-1 if none).
    int stop_fd() const;
    // The guest stopped (its eventfd fired) or is made to: joins every
    // thread, reports, frees the machine. -> Stopped. Returns why it stopped.
    StopRequest collect_stop();
    // An immediate stop with `why` (operator), then collect_stop().
    StopRequest poweroff(const std::string& why);

    std::expected<void, Error> pause() override;
    std::expected<void, Error> resume() override;
    // ACPI power button. Conflict if the guest is not running or has not
    // enabled the button (then only poweroff stops it). -> Stopping.
    std::expected<void, Error> press_power_button();

    // Pinning is remembered and applied whenever the guest (re)starts.
    // OutOfRange: no such vCPU, a CPU that does not exist or that this
    // process may not use.
    std::expected<void, Error> pin(unsigned vcpu, const CpuList& cpus) override;
    std::expected<void, Error> unpin(std::optional<unsigned> vcpu) override;
    // Per vCPU: the CPUs it is pinned to, nullopt if not pinned.
    const std::vector<std::optional<CpuList>>& pinning() const override { return pins_; }
    const CpuList& allowed_cpus() const { return allowed_; }

    // Balloon (nullptr/Unavailable without one). The target is remembered
    // and set again when the guest restarts.
    std::expected<void, Error> set_balloon_target(uint64_t bytes) override;
    uint64_t balloon_target() const override { return balloon_target_; }
    bool has_balloon() const { return config_.machine.balloon.has_value(); }

    // A restart is starting because of a stop requested at `detected_at`:
    // restart_latency() then measures to the new machine's first instruction.
    void set_restart_detected_at(std::chrono::steady_clock::time_point detected_at) override { restart_detected_at_ = detected_at; }
    // From the fault's detection to the first KVM_RUN of the restarted
    // guest; nullopt before the first restart (or while it is starting).
    std::optional<std::chrono::nanoseconds> restart_latency() const override;

    // Lifetime figures.
    uint64_t starts() const override { return starts_; }
    uint64_t restarts() const { return starts_ ? starts_ - 1 : 0; }
    std::chrono::steady_clock::time_point started_at() const { return started_at_; }
    const std::optional<StopRequest>& last_stop() const override { return last_stop_; }
    // The last telemetry snapshot of a machine that has stopped (counters
    // keep their final values until the next start).
    const std::optional<Telemetry>& final_telemetry() const { return final_telemetry_; }
    void set_state(GuestState to, const std::string& why) override;

    // SupervisedGuest: what the supervisor watches while the guest runs.
    bool stop_requested() const override;
    void request_stop(StopRequest request) override;
    bool can_detect_hangs() const override { return machine_ && machine_->can_detect_hangs(); }
    HealthSample health() const override { return machine_ ? machine_->health() : HealthSample{}; }
    std::optional<std::string> watchdog_expired(uint64_t now_ns) const override;

private:
    std::expected<void, Error> check_vcpu(unsigned vcpu) const;
    std::expected<void, Error> check_cpus(const CpuList& cpus) const;
    void apply_pins();

    GuestConfig config_;
    CpuList allowed_;
    StateListener listener_;
    GuestState state_ = GuestState::Stopped;
    std::unique_ptr<Machine> machine_;
    std::vector<std::optional<CpuList>> pins_;
    uint64_t balloon_target_ = 0;
    uint64_t starts_ = 0;
    std::chrono::steady_clock::time_point started_at_{};
    std::optional<StopRequest> last_stop_;
    std::optional<Telemetry> final_telemetry_;
    std::unique_ptr<ProbeSet> probes_;  // between two runs: kept for the next build
    std::optional<std::chrono::steady_clock::time_point> restart_detected_at_;
    mutable std::optional<std::chrono::nanoseconds> restart_latency_;
};

}  // namespace vireo
