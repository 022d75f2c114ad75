// The control protocol: newline-delimited JSON over a UNIX stream socket.
//
//   request   {"id": 7, "request": "pin", "guest": "web", "vcpu": 0, "cpus": [1]}
//   response  {"id": 7, "result": {...}}
//   error     {"id": 7, "error": {"code": "out_of_range", "message": "..."}}
//   event     {"event": {"seq": 12, "type": "state", ...}}   (after an `events` request)
//
// parse_request() is pure -- bytes in, a typed request or an error out, no
// state touched -- so it can be fuzzed (tests/fuzz/fuzz_control_request.cpp)
// and everything past it deals with well-formed values only. Whether a
// guest, vCPU or host CPU exists is for the host to check (it knows).
// The reference is README.md, "Control protocol".
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "vireo/actions.h"

namespace vireo::control {

// A message (one line, without its newline) may be at most this long.
inline constexpr size_t kMaxMessage = 64 * 1024;

namespace req {
struct Info {};
struct List {};
// pause, resume, shutdown, poweroff, restart, pin, unpin: one action on a guest.
struct GuestAction {
    ActionBody body;
};
struct Vcpus {};
struct Balloon {
    std::optional<uint64_t> target_bytes;  // set if present, else get
};
struct Disks {};
struct Metrics {};
// Without `guest`: the process-wide mode and limits. With `guest`: that
// guest's mode override (nullopt inside = inherit) and its held levers.
struct Controller {
    std::optional<ControllerMode> mode;
    std::optional<std::optional<ControllerMode>> guest_mode;
    // Limit fields given (others keep their value): name -> value.
    std::vector<std::pair<std::string, uint64_t>> limits;
    std::vector<std::string> release;  // "pin", "balloon"
    std::vector<std::string> hold;
};
struct Decisions {
    size_t limit = 50;
};
struct Undo {
    uint64_t seq = 0;
};
struct Events {
    std::optional<uint64_t> since;   // replay kept events from this sequence number
    std::vector<std::string> types;  // only these event types (empty: all)
};
}  // namespace req

using RequestBody = std::variant<req::Info, req::List, req::GuestAction, req::Vcpus, req::Balloon, req::Disks,
                                 req::Metrics, req::Controller, req::Decisions, req::Undo, req::Events>;

struct Request {
    nlohmann::json id;   // integer or string, echoed in the response
    std::string name;    // the "request" field
    std::string guest;   // empty where none was given
    std::string reason;  // optional "reason": recorded with the action
    RequestBody body;
};

struct ProtocolError {
    nlohmann::json id;  // null when the request's id could not be read
    Error error;
};

std::expected<Request, ProtocolError> parse_request(std::string_view line);

// The requests we know, in the order the README documents them.
const std::vector<std::string_view>& request_names();

// One line each, without the trailing newline.
std::string result_line(const nlohmann::json& id, nlohmann::json result);
std::string error_line(const nlohmann::json& id, const Error& error);

// Serialises without throwing on invalid UTF-8 (replaced), as every line
// we write must be valid JSON.
std::string dump(const nlohmann::json& j);

}  // namespace vireo::control
