// One guest: its KVM VM, memory, vCPUs, devices and threads, built from a
// MachineConfig and run until it stops.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/probe_set.h"
#include "vireo/telemetry.h"
#include "vmm/devices/console.h"
#include "vmm/devices/io_bus.h"
#include "vmm/devices/virtio/virtio_devices.h"
#include "vmm/kvm/binary_stats.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/machine_config.h"
#include "vmm/stop_latch.h"
#include "vmm/supervisor/hang_detector.h"
#include "vmm/vcpu_runner.h"

namespace vireo {

class AcpiPm;
class Ib700Watchdog;
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
    // `probes`: the probe set of the same guest's previous run, to reuse
    // (a restart; nullptr: load them as the config says).
    static std::expected<std::unique_ptr<Machine>, BuildError> build(const MachineConfig& config,
                                                                     std::chrono::steady_clock::time_point start,
                                                                     std::unique_ptr<ProbeSet> probes = nullptr);
    // After halt(): hands the probe set over for the next run of this guest
    // (its vCPU threads unregistered).
    std::unique_ptr<ProbeSet> take_probes();
    ~Machine();

    // Host runs a guest (`vireo run` is a host of one) with these:
    // start the vCPU and console threads; once stop().eventfd() is readable,
    // halt() kicks and joins every thread and returns why the guest stopped.
    void start();
    StopRequest halt();
    void report_stop(const StopRequest& request) const;

    const MachineConfig& config() const { return config_; }
    const std::vector<std::unique_ptr<VcpuRunner>>& vcpus() const { return runners_; }
    StopLatch& stop() { return stop_; }
    // The ACPI power button (graceful shutdown); false if the guest has not
    // enabled it (no ACPI OS running), so the caller can say so.
    bool press_power_button();
    // Where the guest's virtio-blk devices are (for the `disks` request).
    const VirtioDevices* virtio() const { return virtio_.get(); }
    // The balloon's internal API (target, actual, stats) for the control
    // socket and the controller; nullptr without --balloon.
    VirtioBalloon* balloon() { return virtio_ ? virtio_->balloon() : nullptr; }
    // Where this guest's time goes (include/vireo/telemetry.h): the vCPU
    // threads' counters, KVM's binary stats, the eBPF probes. Safe from any
    // thread, also while the guest runs.
    Telemetry telemetry() const;
    const ProbeSet* probes() const { return probes_.get(); }
    // Is the guest alive: a progress counter (exits to vireo's devices,
    // interrupts delivered, wake-ups from halt) and whether every vCPU is
    // busy in guest code right now. Cheap (a few preads); any thread.
    HealthSample health() const;
    // False without KVM binary stats: a vCPU halted in KVM then looks like
    // one spinning, so hangs cannot be told from idleness.
    bool can_detect_hangs() const { return can_detect_hangs_; }
    // nullptr without a watchdog.
    const Ib700Watchdog* watchdog() const { return watchdog_.get(); }

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
    StopLatch stop_;
    std::shared_ptr<Serial8250> serial_;
    std::shared_ptr<BootMarker> boot_marker_;
    std::shared_ptr<TestPorts> test_ports_;
    std::shared_ptr<AcpiPm> acpi_;
    std::shared_ptr<Ib700Watchdog> watchdog_;
    // virtio-mmio devices and their I/O thread; on the mmio bus, so they
    // outlive the vCPU threads (declared before runners_).
    std::unique_ptr<VirtioDevices> virtio_;
    // Outlive the vCPU threads (declared before runners_): the threads
    // register themselves with the probes when they start.
    std::unique_ptr<ProbeSet> probes_;
    std::vector<std::optional<BinaryStats>> vcpu_stats_;  // per vCPU; nullopt if KVM has none
    bool can_detect_hangs_ = false;  // every vCPU's stats have halt_wakeup and blocking (fixed at build)
    std::vector<std::unique_ptr<VcpuRunner>> runners_;
};

}  // namespace vireo
