// The life cycle of a supervised guest, shared by the guest, the
// supervisor that moves it between restarts, and the readers (status,
// metrics, the controller's snapshot).
//
//   starting -> running <-> paused
//   running/paused -> stopping (power button pressed) -> stopped
//   any live state -> stopped (guest powered off, faulted, or poweroff)
//   stopped -> starting (restart)
//   stopped -> backoff (the restart policy waits) -> starting
//   stopped -> failed (too many failures; only an administrator's restart
//   leaves it)
#pragma once

#include <string_view>

namespace vireo {

enum class GuestState { Starting, Running, Paused, Stopping, Stopped, Backoff, Failed };
std::string_view to_string(GuestState state);

}  // namespace vireo
