// The thread that runs one vCPU: KVM_RUN in a loop, exits dispatched to the
// PIO/MMIO buses without locks, faults turned into stop requests.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "vmm/devices/io_bus.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vcpu_exit_counters.h"

namespace vireo {

class VcpuRunner {
public:
    // `thread_name`: "CPU N/g<guest>", at most 15 characters, so bcc's
    // kvmexit and /proc readers find vCPU threads the way they find QEMU's.
    VcpuRunner(Vcpu& vcpu, IoBus& pio, IoBus& mmio, StopSink& stop, std::string thread_name);
    ~VcpuRunner();

    // Runs on the vCPU thread once, after tid() is set and before the first
    // KVM_RUN (the probes register the thread here so no exit is missed).
    // Before start() only.
    void on_thread_start(std::function<void(pid_t)> hook) { on_thread_start_ = std::move(hook); }
    void start();
    // Makes KVM_RUN return at once (immediate_exit + a signal), so the thread
    // sees the stop; safe to call from any thread, any number of times.
    void kick();
    void join();

    // Pause: the thread leaves KVM_RUN (a kick) and parks until resume() or
    // a stop. The flag is only looked at when KVM_RUN returns EINTR, so the
    // exit path costs nothing more. Any thread; wait_parked() tells when the
    // vCPU is really off the CPU (a vCPU busy in a device returns first).
    void pause();
    void resume();
    bool wait_parked(std::chrono::steady_clock::time_point deadline);
    bool parked() const { return parked_.load(std::memory_order_acquire); }

    pid_t tid() const { return tid_.load(std::memory_order_acquire); }
    const std::string& thread_name() const { return thread_name_; }
    const VcpuExitCounters& counters() const { return counters_; }
    // Monotonic time of the first PIO exit (start-up benchmarks).
    std::chrono::steady_clock::time_point first_pio() const { return first_pio_; }
    // Monotonic time just before the first KVM_RUN (epoch if not yet): the
    // end of a restart's latency.
    std::chrono::steady_clock::time_point first_entry() const {
        return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(first_entry_.load(std::memory_order_acquire)));
    }
    // Inside KVM_RUN now (running guest code, or halted in KVM), as opposed
    // to handling an exit in vireo or parked: the hang detector's view.
    bool in_guest() const { return in_guest_.load(std::memory_order_relaxed); }

    // Installs the no-op handler of the kick signal (once per process).
    static void install_kick_handler();

private:
    void loop();
    void handle_exit();
    std::string describe_state(const char* what);

    Vcpu& vcpu_;
    IoBus& pio_;
    IoBus& mmio_;
    StopSink& stop_;
    std::string thread_name_;
    std::thread thread_;
    std::atomic<pid_t> tid_{0};
    VcpuExitCounters counters_;
    std::chrono::steady_clock::time_point first_pio_{};
    std::atomic<std::chrono::steady_clock::rep> first_entry_{0};
    std::atomic<bool> in_guest_{false};
    std::function<void(pid_t)> on_thread_start_;
    void park();
    std::atomic<bool> pause_requested_{false};
    std::atomic<bool> parked_{false};
    std::mutex park_mutex_;
    std::condition_variable park_cv_;
};

}  // namespace vireo
