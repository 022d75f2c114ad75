// `vireo` command line: parsed into a GuestConfig (through the same guest
// settings parser as the host config file), or one error line.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "vmm/guest_config.h"
#include "vmm/machine_config.h"

namespace vireo {

// Sizes as users type them: "512M", "2G", "64MiB", "1048576K"; a bare
// number is MiB (as QEMU reads -m). Errors say what was wrong.
std::expected<uint64_t, std::string> parse_size(const std::string& text);

struct CliResult {
    // Run: one guest from `guest`. Host: guests from the file `host_config`.
    enum class Action { Run, Host, Exit } action = Action::Run;
    int exit_status = 0;  // for Exit (help/version: 0)
    GuestConfig guest;
    std::string host_config;     // vireo host --config FILE
    std::string control;         // --control PATH|none (empty: the default path)
    std::string metrics_listen;  // --metrics-listen ADDR:PORT (empty: off)
    std::string seccomp = "on";  // --seccomp off|log|on (per-thread filters; checked here)
    std::string user;            // --user NAME (empty: stay who we are)
};

// Parses argv; bad input is std::unexpected("one line"), exit status 2.
std::expected<CliResult, std::string> parse_command_line(int argc, const char* const* argv);

}  // namespace vireo
