/* Actions: the one vocabulary for changing a running vireo.
 *
 * An administrator's request on the control socket, the learned
 * controller's decision (agent/) and the supervisor's restart of a
 * faulted guest are all an `Action` with an `Origin`, and all go
 * through one `Actuator::submit` -> the actuator's `apply()`: the same checks,
 * the same decision log (who, what, when, why, result, how to undo it), the
 * same events. Nothing changes a guest any other way.
 *
 * C++ only (unlike the C records in telemetry.h): actions carry strings and
 * variants, and their only producers -- the control socket and the agent --
 * are C++. The agent depends on this header and nothing under vmm/.
 */
#ifndef VIREO_ACTIONS_H
#define VIREO_ACTIONS_H

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vireo/controller_limits.h"

namespace vireo {

// Stable error codes of the control protocol and of apply(); their names
// (to_string) are what clients match on, so never rename one.
enum class ErrorCode {
    ParseError,      // not JSON
    BadRequest,      // JSON, but a missing/unknown field or a wrong type
    UnknownRequest,  // "request" names nothing we know
    UnknownGuest,    // no guest by that name
    OutOfRange,      // a value outside what this host or guest allows (a CPU that does not exist, ...)
    Conflict,        // not possible in the current state (resume a running guest, a held override, ...)
    Unavailable,     // the guest has no such device/feature (no balloon, no telemetry)
    TooLarge,        // a message over the size limit; the connection is closed
    Forbidden,       // the peer's uid may not use this socket; the connection is closed
    Internal,        // vireo failed doing it (a host error); state is as before
};

constexpr std::string_view to_string(ErrorCode code) {
    switch (code) {
        case ErrorCode::ParseError: return "parse_error";
        case ErrorCode::BadRequest: return "bad_request";
        case ErrorCode::UnknownRequest: return "unknown_request";
        case ErrorCode::UnknownGuest: return "unknown_guest";
        case ErrorCode::OutOfRange: return "out_of_range";
        case ErrorCode::Conflict: return "conflict";
        case ErrorCode::Unavailable: return "unavailable";
        case ErrorCode::TooLarge: return "too_large";
        case ErrorCode::Forbidden: return "forbidden";
        case ErrorCode::Internal: return "internal";
    }
    return "internal";
}

struct Error {
    ErrorCode code = ErrorCode::Internal;
    std::string message;
};

enum class ControllerMode { Off, Advise, Auto };

constexpr std::string_view to_string(ControllerMode mode) {
    return mode == ControllerMode::Off ? "off" : mode == ControllerMode::Advise ? "advise" : "auto";
}
inline std::optional<ControllerMode> parse_controller_mode(std::string_view text) {
    if (text == "off") return ControllerMode::Off;
    if (text == "advise") return ControllerMode::Advise;
    if (text == "auto") return ControllerMode::Auto;
    return std::nullopt;
}

// Per guest: the controller mode for this guest (nullopt: the process-wide
// mode) and the levers an administrator holds. A manual pin or balloon
// target holds its lever until released (`controller` request, release).
struct GuestControl {
    std::optional<ControllerMode> mode;
    bool pin_held = false;
    bool balloon_held = false;
    bool operator==(const GuestControl&) const = default;
};

namespace action {
struct Pause {};
struct Resume {};
// ACPI power button; if the guest has not stopped after `timeout`, poweroff
// (0: the guest's configured shutdown_timeout).
struct Shutdown {
    std::chrono::milliseconds timeout{0};
};
struct Poweroff {};
// Power off (if running) and boot again from the same configuration.
struct Restart {};
// Pin vCPU `vcpu`'s thread to host CPUs `cpus` (sorted, unique).
struct Pin {
    unsigned vcpu = 0;
    std::vector<unsigned> cpus;
};
// Back to every CPU this process may use; nullopt: all vCPUs.
struct Unpin {
    std::optional<unsigned> vcpu;
};
// Balloon size in bytes (what the host takes back; the guest keeps RAM - target).
struct BalloonTarget {
    uint64_t bytes = 0;
};
struct ControllerModeSet {  // process-wide; Action::guest is empty
    ControllerMode mode = ControllerMode::Off;
};
struct ControllerLimitsSet {  // process-wide
    ControllerLimits limits;
};
struct GuestControlSet {  // per guest: mode override and held levers, the whole state
    GuestControl control;
};
}  // namespace action

using ActionBody = std::variant<action::Pause, action::Resume, action::Shutdown, action::Poweroff, action::Restart,
                                action::Pin, action::Unpin, action::BalloonTarget, action::ControllerModeSet,
                                action::ControllerLimitsSet, action::GuestControlSet>;

// The name of each alternative, as the protocol and the decision log spell it.
constexpr std::string_view action_name(const ActionBody& body) {
    constexpr std::string_view names[] = {"pause",       "resume",          "shutdown",   "poweroff",
                                          "restart",     "pin",             "unpin",      "balloon",
                                          "controller",  "controller-limits", "guest-control"};
    return names[body.index()];
}

struct Action {
    std::string guest;  // empty for process-wide actions
    ActionBody body;
};

enum class ActionSource {
    Admin,       // the control socket (a person or a script)
    Controller,  // the learned controller (agent/)
    Supervisor,  // restart policy, hang detection, watchdog
    Config,      // start-up settings from the config file (initial pinning)
};
constexpr std::string_view to_string(ActionSource s) {
    return s == ActionSource::Admin        ? "admin"
           : s == ActionSource::Controller ? "controller"
           : s == ActionSource::Supervisor ? "supervisor"
                                           : "config";
}

struct Origin {
    ActionSource source = ActionSource::Admin;
    std::string who;     // "uid 1000 pid 4242" for a socket peer, the policy's name for the controller
    std::string reason;  // why: free text from the admin, the model's explanation from the controller
};

enum class Outcome {
    Applied,  // done
    Advised,  // controller in advise mode: logged and published, nothing changed
    Refused,  // an error; nothing changed
};
constexpr std::string_view to_string(Outcome o) {
    return o == Outcome::Applied ? "applied" : o == Outcome::Advised ? "advised" : "refused";
}

struct ActionResult {
    Outcome outcome = Outcome::Refused;
    std::optional<Error> error;  // set iff Refused
    uint64_t seq = 0;            // its record in the decision log
};

// The door every change goes through. Thread-safe: submit() from any
// thread; the host applies actions one at a time on its control thread.
class Actuator {
public:
    virtual ~Actuator() = default;
    virtual std::future<ActionResult> submit(Action action, Origin origin) = 0;
};

}  // namespace vireo

#endif
