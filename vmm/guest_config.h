// What `vireo host --config FILE` (and `vireo run`, as a host of one guest)
// asks for: the process's settings and, per guest, the MachineConfig its
// Machine is (re)built from plus what the supervisor needs around it.
//
// Why GuestConfig wraps MachineConfig instead of growing it: a Machine is
// rebuilt from its MachineConfig on every restart and never needs to know
// about restart policies, initial pinning or controller overrides; those
// belong to the Guest that supervises it.
//
// The file format is JSON (nlohmann-json) and documented in README.md,
// "Host config file". Parsing is pure (text in, config or one error line
// out) so every rule is unit-tested; anything about the host (does CPU 3
// exist, can the kernel be read) is checked when the host is built.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "agent/snapshot.h"
#include "vireo/actions.h"
#include "vmm/cpu_list.h"
#include "vmm/machine_config.h"
#include "vmm/supervisor/hang_detector.h"
#include "vmm/supervisor/restart_backoff.h"

namespace vireo {

struct GuestConfig {
    MachineConfig machine;
    RestartPolicy restart;  // vmm/supervisor/restart_backoff.h
    HangSettings hang;  // hang detection (vmm/supervisor/hang_detector.h)
    std::map<unsigned, CpuList> pinning;  // vCPU -> host CPUs, applied whenever the guest starts
    std::chrono::milliseconds shutdown_timeout{30000};  // `shutdown` falls back to poweroff after it
    std::optional<ControllerMode> controller_mode;      // nullopt: the process-wide mode
    // "class": how the controller weighs this guest's waiting (latency-
    // sensitive or batch); Unknown ("auto"): inferred from its halt/wake pattern.
    agent::GuestClass guest_class = agent::GuestClass::Unknown;
    const std::string& name() const { return machine.name; }
};

struct HostConfig {
    std::string name;            // names the default control socket; empty: the pid
    std::string control_path;    // empty: the default path; "none": no control socket
    std::string metrics_listen;  // "ADDR:PORT"; empty: no metrics listener
    ControllerMode controller_mode = ControllerMode::Off;
    ControllerLimits controller_limits;
    std::chrono::milliseconds controller_tick{1000};  // controller.tick_s: how often the controller looks
    // controller.balloon_warmup_s: history the balloon policy wants before
    // its first reclaim; nullopt: the policy's default (agent/balloon_policy.h).
    std::optional<double> controller_balloon_warmup_s;
    // `vireo run`: the process ends with its guest. `vireo host` keeps
    // serving (restart, inspect) until a signal, unless the file says so.
    bool exit_when_all_stopped = false;
    std::vector<GuestConfig> guests;
};

// Checks a guest name: 1-64 of [A-Za-z0-9._-]; thread names, socket file
// names and metric labels all use it.
std::expected<void, std::string> check_guest_name(std::string_view name);

// One guest's settings: a JSON object like an entry of the config file's
// "guests" array ("name" is the caller's to check and set). The command
// line builds the same object from its flags, so both meet one set of
// rules and bounds. Errors name the key: "'cpus' must be between 1 and 255, not 0".
std::expected<GuestConfig, std::string> parse_guest_settings(const nlohmann::json& settings);

// `origin` names the text in errors (the file's path). Errors are one line:
// "FILE: guest 'web': 'cpus': must be between 1 and 255, not 0".
std::expected<HostConfig, std::string> parse_host_config(std::string_view text, std::string_view origin);
std::expected<HostConfig, std::string> load_host_config(const std::string& path);

// The command-line forms: "on-failure[,backoff_initial_s=0.1,max_failures=3,...]"
// (the config file's keys), "off|on|min_s=S[,factor=F,...]", "[timeout_s=S]".
std::expected<RestartPolicy, std::string> parse_restart_spec(std::string_view spec);
std::expected<HangSettings, std::string> parse_hang_spec(std::string_view spec);
std::expected<WatchdogConfig, std::string> parse_watchdog_spec(std::string_view spec);

// A guest's `class` setting: "latency-sensitive", "batch", or "auto"
// (GuestClass::Unknown: the controller infers it); nullopt for anything else.
std::optional<agent::GuestClass> parse_class_setting(std::string_view text);
std::string_view class_setting(agent::GuestClass c);

}  // namespace vireo
