// Every control request in one table: its name, whether it names a guest,
// its fields, and how vireoctl takes each on its command line. The server's
// parser (protocol.cpp) checks a request's fields against it, and vireoctl
// makes one subcommand per entry from it, so a request added here is both
// served and reachable from the command line, under the same names.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vireo::control {

// How a field is written on vireoctl's command line and on the wire.
enum class FieldType {
    Count,     // a whole number, sent as a JSON integer
    Seconds,   // a number of seconds (fractions allowed), sent rounded up to a whole second
    Text,      // sent as the string given ("0-1,3", "512M", "auto")
    Names,     // repeatable; sent as an array of strings
    Settings,  // repeatable NAME=VALUE; sent as an object of whole numbers
};

struct RequestField {
    std::string_view key;   // in the request
    std::string_view flag;  // vireoctl's option ("--timeout"); empty: a positional argument
    FieldType type;
    bool required;
    std::string_view help;
};

enum class GuestArg { None, Required, Optional };

struct RequestSpec {
    std::string_view name;
    GuestArg guest;
    std::vector<RequestField> fields;  // besides id, request, guest, reason
    std::string_view help;             // one line, for vireoctl --help
    // vireoctl: a required guest is always a positional NAME; an optional
    // one is `--guest NAME` unless this says positional.
    bool optional_guest_positional = false;
    std::string_view guest_help = "guest name";
};

// In the order the README documents them.
const std::vector<RequestSpec>& request_specs();
const RequestSpec* find_request_spec(std::string_view name);

// vireoctl's side: the request `spec` with `guest` (empty: none) and the
// command-line values by field key (each as typed; a repeatable field's
// values in order). Errors are one line naming the field: "pin: vcpu: 'x'
// is not a whole number".
std::expected<nlohmann::json, std::string> build_request(const RequestSpec& spec, const std::string& guest,
                                                         const std::map<std::string, std::vector<std::string>>& values);

}  // namespace vireo::control
