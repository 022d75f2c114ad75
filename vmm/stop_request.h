// Why a guest stopped: the request a device, the vCPU loop, the supervisor
// or an operator makes, and the vocabulary the exit status, the events and
// the restart policy share.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace vireo {

// Why a VM stops. Devices and the vCPU loop request a stop; the machine
// turns the first request into the process exit status.
enum class StopReason {
    PowerOff,     // ACPI S5, KVM system event shutdown
    Reset,        // i8042 reset, ACPI reset, KVM system event reset
    Panic,        // pvpanic
    TripleFault,  // KVM_EXIT_SHUTDOWN
    KvmError,     // internal error, fail entry, unknown exit
    Hang,         // no progress for longer than the guest's learned normal (vmm/supervisor/hang_detector.h)
    Watchdog,     // the guest stopped feeding its watchdog (vmm/devices/ib700_watchdog.h)
    TestExit,     // the test-exit port; `code` is the status
    Operator,     // SIGINT/SIGTERM/Ctrl-A x
    HostError,    // vireo itself failed
};

std::string_view to_string(StopReason reason);

// A stop the guest did not ask for: it is reported as a fault event.
bool is_fault(StopReason reason);

struct StopRequest {
    StopReason reason;
    int code = 0;        // exit status for TestExit
    std::string detail;  // evidence for the log: registers, exit data
    // When the stop was requested (set by the StopSink if left empty): the
    // start of a restart's latency.
    std::chrono::steady_clock::time_point at{};
};

// One line for logs and events: "panic: pvpanic: guest panicked", "test-exit 3".
std::string describe(const StopRequest& request);

}  // namespace vireo
