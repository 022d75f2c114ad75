// One guest: its KVM VM, memory, vCPUs, devices and threads, built from a
// MachineConfig and run until it stops.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "vmm/devices/console.h"
#include "vmm/devices/io_bus.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/machine_config.h"
#include "vmm/stop_controller.h"
#include "vmm/vcpu_runner.h"

namespace vireo {

class BootMarker;
class TestPorts;
class Serial8250;

struct BuildError {
    bool bad_input;  // exit 2: the user's input was wrong; otherwise a host problem
    std::string message;
};

class Machine {
public:
    // Validates every input before creating anything: a bad kernel, initrd,
    // size or vCPU count is one error line and no half-built VM.
    static std::expected<std::unique_ptr<Machine>, BuildError> build(const MachineConfig& config,
                                                                     std::chrono::steady_clock::time_point start);
    ~Machine();

    // Runs the guest until it stops, turning SIGINT/SIGTERM/SIGHUP into an
    // operator stop; returns the process exit status (`vireo run`).
    int run();

    // The pieces of run(), for a supervisor that watches several guests:
    // start the vCPU and console threads; once stop().eventfd() is readable,
    // halt() kicks and joins every thread and returns why the guest stopped.
    void start();
    StopRequest halt();
    void report_stop(const StopRequest& request) const;

    const MachineConfig& config() const { return config_; }
    const std::vector<std::unique_ptr<VcpuRunner>>& vcpus() const { return runners_; }
    StopController& stop() { return stop_; }

private:
    Machine() = default;
    std::expected<void, BuildError> add_devices();
    void print_stats() const;

    MachineConfig config_;
    std::chrono::steady_clock::time_point start_;
    KvmSystem kvm_;
    Vm vm_;
    GuestMemory memory_;
    std::vector<Vcpu> vcpu_fds_;
    // Declared before the buses: devices on the buses refer to these, and
    // members are destroyed in reverse order.
    std::vector<std::unique_ptr<InterruptLine>> irq_lines_;
    std::unique_ptr<Console> console_;
    IoBus pio_{"pio"};
    IoBus mmio_{"mmio"};
    StopController stop_;
    std::shared_ptr<Serial8250> serial_;
    std::shared_ptr<BootMarker> boot_marker_;
    std::shared_ptr<TestPorts> test_ports_;
    std::vector<std::unique_ptr<VcpuRunner>> runners_;
};

}  // namespace vireo
