#include "vmm/vcpu_runner.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/log.h"
#include "vmm/security/seccomp_filters.h"

namespace vireo {

namespace {
constexpr int kKickSignal = SIGUSR1;
void on_kick(int) {}

// Single writer (the vCPU thread): a plain load+store keeps the hot path
// free of locked instructions while readers still see whole values.
inline void bump(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

const char* exit_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_IO: return "io";
        case KVM_EXIT_MMIO: return "mmio";
        case KVM_EXIT_HLT: return "hlt";
        case KVM_EXIT_SHUTDOWN: return "shutdown";
        case KVM_EXIT_FAIL_ENTRY: return "fail-entry";
        case KVM_EXIT_INTERNAL_ERROR: return "internal-error";
        case KVM_EXIT_SYSTEM_EVENT: return "system-event";
        case KVM_EXIT_INTR: return "intr";
        case KVM_EXIT_IRQ_WINDOW_OPEN: return "irq-window-open";
        default: return "other";
    }
}
}  // namespace

void VcpuRunner::install_kick_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_kick;  // no SA_RESTART: KVM_RUN must return EINTR
    sigemptyset(&sa.sa_mask);
    ::sigaction(kKickSignal, &sa, nullptr);
}

VcpuRunner::VcpuRunner(Vcpu& vcpu, IoBus& pio, IoBus& mmio, StopSink& stop, std::string thread_name)
    : vcpu_(vcpu), pio_(pio), mmio_(mmio), stop_(stop), thread_name_(std::move(thread_name)) {
    if (thread_name_.size() > 15) thread_name_.resize(15);
}

VcpuRunner::~VcpuRunner() {
    kick();
    join();
}

void VcpuRunner::start() {
    thread_ = std::thread([this] { loop(); });
}

void VcpuRunner::kick() {
    if (auto* run = vcpu_.run_state()) __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (thread_.joinable()) ::pthread_kill(thread_.native_handle(), kKickSignal);
    // A parked thread waits on park_cv_: wake it so it sees a stop.
    { std::lock_guard lock(park_mutex_); }
    park_cv_.notify_all();
}

void VcpuRunner::pause() {
    // Stored before the kick's immediate_exit (both seq_cst): whichever
    // EINTR the thread sees next, it also sees this flag.
    pause_requested_.store(true, std::memory_order_seq_cst);
    kick();
}

void VcpuRunner::resume() {
    {
        std::lock_guard lock(park_mutex_);
        pause_requested_.store(false, std::memory_order_seq_cst);
    }
    park_cv_.notify_all();
}

bool VcpuRunner::wait_parked(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(park_mutex_);
    return park_cv_.wait_until(lock, deadline, [&] {
        return parked_.load(std::memory_order_acquire) || !thread_.joinable() || stop_.stop_requested();
    });
}

void VcpuRunner::park() {
    std::unique_lock lock(park_mutex_);
    parked_.store(true, std::memory_order_release);
    park_cv_.notify_all();
    park_cv_.wait(lock, [&] { return !pause_requested_.load(std::memory_order_seq_cst) || stop_.stop_requested(); });
    parked_.store(false, std::memory_order_release);
}

void VcpuRunner::join() {
    if (thread_.joinable()) thread_.join();
}

void VcpuRunner::loop() {
    tid_.store(pid_t(::syscall(SYS_gettid)), std::memory_order_release);
    if (on_thread_start_) on_thread_start_(tid_.load(std::memory_order_relaxed));
    ::pthread_setname_np(::pthread_self(), thread_name_.c_str());
    // Only the kick signal reaches vCPU threads; SIGINT/SIGTERM go to the
    // main thread, which turns them into an orderly stop.
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, kKickSignal);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS}) sigdelset(&set, s);
    ::pthread_sigmask(SIG_SETMASK, &set, nullptr);
    // Set up: from here on only what the vCPU list allows (least privilege).
    security::seccomp_install(security::ThreadKind::Vcpu, thread_name_);

    kvm_run* run = vcpu_.run_state();
    first_entry_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_release);
    while (!stop_.stop_requested()) {
        in_guest_.store(true, std::memory_order_relaxed);
        int r = vcpu_.run();
        in_guest_.store(false, std::memory_order_relaxed);
        bump(counters_.runs);
        if (r == -EINTR || r == -EAGAIN) {
            __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
            // Only here, after a kick, is a pause looked at: the exit path
            // stays as it was.
            if (pause_requested_.load(std::memory_order_seq_cst)) park();
            continue;
        }
        if (r < 0) {
            stop_.request_stop({StopReason::HostError, 0,
                                fmt::format("vCPU {}: KVM_RUN: {}", vcpu_.index(), std::strerror(-r))});
            break;
        }
        uint32_t reason = run->exit_reason;
        bump(counters_.by_reason[reason < VcpuExitCounters::kReasons ? reason : 0]);
        handle_exit();
    }
}

std::string VcpuRunner::describe_state(const char* what) {
    std::string s = fmt::format("vCPU {}: {}", vcpu_.index(), what);
    if (auto regs = vcpu_.get_regs())
        s += fmt::format("; rip={:#x} rsp={:#x} rflags={:#x} rax={:#x}", regs->rip, regs->rsp, regs->rflags, regs->rax);
    if (auto sregs = vcpu_.get_sregs())
        s += fmt::format(" cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x}", sregs->cr0, sregs->cr3, sregs->cr4,
                         sregs->efer, sregs->cs.selector);
    return s;
}

void VcpuRunner::handle_exit() {
    kvm_run* run = vcpu_.run_state();
    switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            if (first_pio_ == std::chrono::steady_clock::time_point{}) first_pio_ = std::chrono::steady_clock::now();
            auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
            size_t size = run->io.size;
            // String I/O (rep outs/ins) arrives as `count` accesses back to back.
            for (uint32_t i = 0; i < run->io.count; ++i) {
                std::span<uint8_t> data(base + i * size, size);
                if (run->io.direction == KVM_EXIT_IO_OUT)
                    pio_.write(run->io.port, data);
                else
                    pio_.read(run->io.port, data);
            }
            return;
        }
        case KVM_EXIT_MMIO: {
            std::span<uint8_t> data(run->mmio.data, std::min<size_t>(run->mmio.len, sizeof run->mmio.data));
            if (run->mmio.is_write)
                mmio_.write(run->mmio.phys_addr, data);
            else
                mmio_.read(run->mmio.phys_addr, data);
            return;
        }
        case KVM_EXIT_INTR:
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            return;
        case KVM_EXIT_HLT:
            // With the in-kernel irqchip KVM handles HLT itself; if it comes
            // here the guest halted with interrupts off forever.
            stop_.request_stop({StopReason::PowerOff, 0, fmt::format("vCPU {}: halted", vcpu_.index())});
            return;
        case KVM_EXIT_SHUTDOWN:
            stop_.request_stop({StopReason::TripleFault, 0, describe_state("triple fault (KVM_EXIT_SHUTDOWN)")});
            return;
        case KVM_EXIT_SYSTEM_EVENT: {
            uint32_t type = run->system_event.type;
            StopReason reason = type == KVM_SYSTEM_EVENT_RESET   ? StopReason::Reset
                                : type == KVM_SYSTEM_EVENT_CRASH ? StopReason::Panic
                                                                 : StopReason::PowerOff;
            stop_.request_stop({reason, 0, fmt::format("vCPU {}: KVM system event {}", vcpu_.index(), type)});
            return;
        }
        case KVM_EXIT_FAIL_ENTRY:
            stop_.request_stop({StopReason::KvmError, 0,
                                describe_state(fmt::format("KVM_EXIT_FAIL_ENTRY, hardware reason {:#x}",
                                                           uint64_t(run->fail_entry.hardware_entry_failure_reason))
                                                   .c_str())});
            return;
        case KVM_EXIT_INTERNAL_ERROR: {
            std::string data;
            for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i)
                data += fmt::format(" {:#x}", uint64_t(run->internal.data[i]));
            stop_.request_stop({StopReason::KvmError, 0,
                                describe_state(fmt::format("KVM_EXIT_INTERNAL_ERROR suberror {}{}",
                                                           run->internal.suberror, data)
                                                   .c_str())});
            return;
        }
        default:
            stop_.request_stop({StopReason::KvmError, 0,
                                describe_state(fmt::format("unexpected KVM exit {} ({})", run->exit_reason,
                                                           exit_name(run->exit_reason))
                                                   .c_str())});
            return;
    }
}

}  // namespace vireo
