#include "vmm/stop_request.h"

#include <fmt/format.h>

namespace vireo {

std::string_view to_string(StopReason reason) {
    switch (reason) {
        case StopReason::PowerOff: return "power-off";
        case StopReason::Reset: return "reset";
        case StopReason::Panic: return "panic";
        case StopReason::TripleFault: return "triple-fault";
        case StopReason::KvmError: return "kvm-error";
        case StopReason::Hang: return "hang";
        case StopReason::Watchdog: return "watchdog";
        case StopReason::TestExit: return "test-exit";
        case StopReason::Operator: return "operator";
        case StopReason::HostError: return "host-error";
    }
    return "unknown";
}

bool is_fault(StopReason r) {
    return r == StopReason::Panic || r == StopReason::TripleFault || r == StopReason::KvmError || r == StopReason::HostError ||
           r == StopReason::Hang || r == StopReason::Watchdog;
}

std::string describe(const StopRequest& r) {
    std::string s(to_string(r.reason));
    if (r.reason == StopReason::TestExit) s += fmt::format(" {}", r.code);
    if (!r.detail.empty()) s += ": " + r.detail;
    return s;
}

}  // namespace vireo
