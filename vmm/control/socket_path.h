// Where the control socket lives unless --control says otherwise, the same
// rule for the server (vireo) and the client (vireoctl):
//   $XDG_RUNTIME_DIR/vireo/NAME.sock   when XDG_RUNTIME_DIR is set,
//   /run/vireo/NAME.sock               as root without it,
//   /tmp/vireo-UID/NAME.sock           otherwise;
// NAME is the host's name (config "name") or vireo's pid.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace vireo::control {

std::string default_control_dir();
std::string default_control_path(std::string_view name);

// Removes sockets named "<pid>.sock" in the default directory whose pid no
// longer exists (left by a vireo that was killed).
void remove_stale_sockets();

// For clients without --control: $VIREO_CONTROL if set, else the only
// socket in default_control_dir() that accepts a connection; an error
// (listing the candidates) if there is none or more than one.
std::expected<std::string, std::string> find_control_socket();

}  // namespace vireo::control
