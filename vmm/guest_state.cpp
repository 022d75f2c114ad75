#include "vmm/guest_state.h"

namespace vireo {

std::string_view to_string(GuestState s) {
    switch (s) {
        case GuestState::Starting: return "starting";
        case GuestState::Running: return "running";
        case GuestState::Paused: return "paused";
        case GuestState::Stopping: return "stopping";
        case GuestState::Stopped: return "stopped";
        case GuestState::Backoff: return "backoff";
        case GuestState::Failed: return "failed";
    }
    return "?";
}

}  // namespace vireo
