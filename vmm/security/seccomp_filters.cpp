#include "vmm/security/seccomp_filters.h"

#include <asm/termbits.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "vireo/exit_status.h"
#include "vmm/kvm/kvm_abi.h"
#include "vmm/log.h"

// The escape hatch of --seccomp log (see "Log mode" below): a syscall
// instruction at a known address. `vireo_seccomp_escape_ret` is the address
// right after it, which is what seccomp_data.instruction_pointer holds for
// a call made there.
extern "C" long vireo_seccomp_escape_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern "C" const char vireo_seccomp_escape_ret[];
asm(R"(
    .text
    .globl vireo_seccomp_escape_syscall
    .type vireo_seccomp_escape_syscall, @function
vireo_seccomp_escape_syscall:
    movq %rdi, %rax
    movq %rsi, %rdi
    movq %rdx, %rsi
    movq %rcx, %rdx
    movq %r8, %r10
    movq %r9, %r8
    movq 8(%rsp), %r9
    syscall
    .globl vireo_seccomp_escape_ret
vireo_seccomp_escape_ret:
    ret
    .size vireo_seccomp_escape_syscall, . - vireo_seccomp_escape_syscall
)");

namespace vireo::security {

namespace {

// ------------------------------------------------------------------ lists
//
// Found by reading the code and by `strace -f` of the test guest (hello,
// smp, pause/resume, triple fault), a virtio-blk disk (O_DIRECT, queue
// depth 16) with a balloon (inflate, deflate, stats), the control socket
// and the metrics endpoint, and a restart. Each entry says who needs it.

enum class Cond : uint8_t {
    None,
    NoExec,         // mmap/mprotect: (prot & PROT_EXEC) == 0 -- no new code, ever
    ThreadOnly,     // clone: CLONE_THREAD set -- threads, never processes
    Enosys,         // clone3: fails with ENOSYS (its flags live in memory BPF cannot read),
                    // so glibc falls back to clone, whose flags it can check
    SelfOnly,       // tgkill: only threads of this process
    FilterOnly,     // seccomp: only SECCOMP_SET_MODE_FILTER (a thread adding its own filter)
    ThreadPrctl,    // prctl: PR_SET_NAME, PR_SET_TIMERSLACK (new threads, before their own filter)
    ReadOnlyOpen,   // openat: no O_WRONLY/O_RDWR/O_CREAT/O_TRUNC
};

struct Rule {
    int nr;
    Cond cond = Cond::None;
};

// Every thread: its own memory (malloc arenas, thread stacks), locks and
// condition variables, log lines (one write(2) each; also the violation
// handler's), signal return (the vCPU kick, SIGSYS), thread exit, abort().
constexpr Rule kCommon[] = {
    {SCMP_SYS(write)},           // log lines, eventfd signals, guest console output
    {SCMP_SYS(futex)},           // std::mutex, condition variables, join
    {SCMP_SYS(mmap), Cond::NoExec},
    {SCMP_SYS(mprotect), Cond::NoExec},
    {SCMP_SYS(munmap)},
    {SCMP_SYS(madvise)},         // malloc trimming, thread stack release; the balloon's MADV_DONTNEED
    {SCMP_SYS(brk)},
    {SCMP_SYS(mremap)},          // realloc of large blocks
    {SCMP_SYS(rt_sigreturn)},    // return from the kick and SIGSYS handlers
    {SCMP_SYS(rt_sigprocmask)},  // thread exit, abort()
    {SCMP_SYS(restart_syscall)},
    {SCMP_SYS(clock_gettime)},   // when the vDSO cannot answer
    {SCMP_SYS(getpid)},          // abort() -> raise()
    {SCMP_SYS(gettid)},
    {SCMP_SYS(tgkill), Cond::SelfOnly},
    {SCMP_SYS(exit)},
    {SCMP_SYS(exit_group)},
};

constexpr Rule kVcpu[] = {
    {SCMP_SYS(ioctl)},  // KVM_RUN and the few below (kVcpuIoctls)
    {SCMP_SYS(poll)},   // console output to a stdout someone made non-blocking
};
constexpr uint32_t kVcpuIoctls[] = {
    KVM_RUN,
    KVM_GET_REGS, KVM_GET_SREGS,  // the registers in a triple-fault / internal-error report
    KVM_IRQ_LINE,                 // UART, i8042, ACPI SCI raised by a port write
    TCSETS,                       // the violation handler puts the terminal back
};

constexpr Rule kIo[] = {
    {SCMP_SYS(io_uring_enter)},  // everything: disk reads/writes/fsync, eventfd and timer reads
    {SCMP_SYS(fallocate)},       // balloon: punch freed pages out of the guest RAM memfd
    {SCMP_SYS(ioctl)},           // TCSETS only
};
constexpr uint32_t kIoIoctls[] = {TCSETS};

constexpr Rule kConsole[] = {
    {SCMP_SYS(read)},   // stdin
    {SCMP_SYS(poll)},   // stdin + the stop eventfd
    {SCMP_SYS(ioctl)},  // below
};
constexpr uint32_t kConsoleIoctls[] = {
    KVM_IRQ_LINE,  // the UART's receive interrupt
    TCSETS,        // the violation handler puts the terminal back
};

constexpr Rule kController[] = {
    {SCMP_SYS(openat), Cond::ReadOnlyOpen},  // /proc/pressure/*, /proc/stat, /proc/<tid>/stat, /sys/devices/system/cpu
    {SCMP_SYS(read)},
    {SCMP_SYS(pread64)},
    {SCMP_SYS(lseek)},
    {SCMP_SYS(close)},
    {SCMP_SYS(newfstatat)},
    {SCMP_SYS(fstat)},
    {SCMP_SYS(clock_nanosleep)},  // the tick
    {SCMP_SYS(nanosleep)},
    {SCMP_SYS(sched_yield)},       // TBB's spin-waits
    {SCMP_SYS(sched_getaffinity)}, // TBB sizes its pool
    {SCMP_SYS(clone), Cond::ThreadOnly},  // TBB's worker threads
    {SCMP_SYS(clone3), Cond::Enosys},
    {SCMP_SYS(set_robust_list)},   // a new thread's first calls
    {SCMP_SYS(rseq)},
    {SCMP_SYS(ioctl)},             // TCSETS only
};
constexpr uint32_t kControllerIoctls[] = {TCSETS};

// The control thread serves the socket and the metrics, watches the guests,
// and builds machines again for restarts: KVM set-up, guest memory, disks,
// the kernel (and its cache), eBPF probes, new threads. Every thread it
// creates runs under this filter too, so the other lists are added to it.
constexpr Rule kControl[] = {
    {SCMP_SYS(read)},  // signalfd, eventfds, files
    {SCMP_SYS(pread64)},  // KVM binary stats, kernel images
    {SCMP_SYS(readv)},
    {SCMP_SYS(writev)},
    {SCMP_SYS(lseek)},
    {SCMP_SYS(close)},
    {SCMP_SYS(openat)},  // kernel, initrd, disks, console file, /proc/<tid>/stat, BTF, tracefs
    {SCMP_SYS(newfstatat)},
    {SCMP_SYS(fstat)},
    {SCMP_SYS(statx)},  // disk O_DIRECT alignment
    {SCMP_SYS(readlink)},
    {SCMP_SYS(faccessat2)},  // libbpf
    {SCMP_SYS(access)},
    {SCMP_SYS(getdents64)},
    {SCMP_SYS(uname)},  // libbpf: kernel version
    {SCMP_SYS(mkdir)},  // the kernel cache
    {SCMP_SYS(rename)},
    {SCMP_SYS(unlink)},  // the control socket at exit, the kernel cache's temporary file
    {SCMP_SYS(fcntl)},
    {SCMP_SYS(flock)},  // disks are locked when opened
    {SCMP_SYS(ftruncate)},
    {SCMP_SYS(fallocate)},
    {SCMP_SYS(memfd_create)},  // guest RAM
    {SCMP_SYS(eventfd2)},
    {SCMP_SYS(timerfd_create)},
    {SCMP_SYS(timerfd_settime)},
    {SCMP_SYS(io_uring_setup)},  // a rebuilt guest's I/O thread
    {SCMP_SYS(io_uring_enter)},
    {SCMP_SYS(io_uring_register)},
    {SCMP_SYS(epoll_wait)},
    {SCMP_SYS(epoll_pwait)},
    {SCMP_SYS(epoll_ctl)},
    {SCMP_SYS(poll)},
    {SCMP_SYS(accept4)},  // control and metrics clients (SOCK_CLOEXEC)
    {SCMP_SYS(recvfrom)},
    {SCMP_SYS(sendto)},
    {SCMP_SYS(getsockopt)},  // SO_PEERCRED
    {SCMP_SYS(shutdown)},
    {SCMP_SYS(ioctl)},  // kControlIoctls
    {SCMP_SYS(bpf)},  // probes: load for a rebuilt guest, read maps for telemetry
    {SCMP_SYS(perf_event_open)},
    {SCMP_SYS(prlimit64)},  // libbpf's memlock check
    {SCMP_SYS(getrandom)},
    {SCMP_SYS(geteuid)},  // who may use the control socket
    {SCMP_SYS(getuid)},
    {SCMP_SYS(sched_getaffinity)},  // pinning
    {SCMP_SYS(sched_setaffinity)},
    {SCMP_SYS(sched_yield)},
    {SCMP_SYS(clock_nanosleep)},
    {SCMP_SYS(nanosleep)},
    {SCMP_SYS(rt_sigaction)},  // the kick handler, the console's terminal-restoring handlers
    {SCMP_SYS(clone), Cond::ThreadOnly},  // vCPU, I/O, console, probe-loading threads
    {SCMP_SYS(clone3), Cond::Enosys},
    {SCMP_SYS(set_robust_list)},  // a new thread's first calls, before its own filter
    {SCMP_SYS(rseq)},
    {SCMP_SYS(prctl), Cond::ThreadPrctl},
    {SCMP_SYS(seccomp), Cond::FilterOnly},  // a new thread adds its own filter
};
constexpr uint32_t kControlIoctls[] = {
    KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, uint32_t(kvm_abi::kGetSupportedCpuid),
    KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2, KVM_IOEVENTFD, KVM_IRQFD, KVM_IRQ_LINE, KVM_CREATE_VCPU, uint32_t(kvm_abi::kSetCpuid2),
    uint32_t(kvm_abi::kSetMsrs), KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_SET_FPU, KVM_GET_LAPIC,
    KVM_SET_LAPIC, KVM_SET_MP_STATE, KVM_GET_TSC_KHZ, KVM_GET_STATS_FD, KVM_RUN,
    BLKGETSIZE64, BLKSSZGET,                      // a disk that is a block device
    TCGETS, TCSETS, TIOCGPGRP,                    // the console's raw mode
    PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_SET_BPF,  // probes on classic tracepoints
};

struct KindLists {
    std::vector<Rule> rules;
    std::vector<uint32_t> ioctls;
};

template <size_t N>
void add(std::vector<Rule>& out, const Rule (&rules)[N]) {
    for (const auto& r : rules) {
        auto same = std::find_if(out.begin(), out.end(), [&](const Rule& o) { return o.nr == r.nr; });
        if (same == out.end()) out.push_back(r);
    }
}
template <size_t N>
void add(std::vector<uint32_t>& out, const uint32_t (&ioctls)[N]) {
    for (uint32_t i : ioctls)
        if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
}

KindLists lists_of(ThreadKind kind) {
    KindLists k;
    add(k.rules, kCommon);
    switch (kind) {
        case ThreadKind::Vcpu: add(k.rules, kVcpu), add(k.ioctls, kVcpuIoctls); break;
        case ThreadKind::Io: add(k.rules, kIo), add(k.ioctls, kIoIoctls); break;
        case ThreadKind::Console: add(k.rules, kConsole), add(k.ioctls, kConsoleIoctls); break;
        case ThreadKind::Controller: add(k.rules, kController), add(k.ioctls, kControllerIoctls); break;
        case ThreadKind::Control:
            // Its own first, so its conditions win (e.g. openat unrestricted
            // here, read-only for the controller).
            add(k.rules, kControl), add(k.ioctls, kControlIoctls);
            add(k.rules, kVcpu), add(k.ioctls, kVcpuIoctls);
            add(k.rules, kIo), add(k.ioctls, kIoIoctls);
            add(k.rules, kConsole), add(k.ioctls, kConsoleIoctls);
            add(k.rules, kController), add(k.ioctls, kControllerIoctls);
            break;
    }
    std::sort(k.rules.begin(), k.rules.end(), [](const Rule& a, const Rule& b) { return a.nr < b.nr; });
    std::sort(k.ioctls.begin(), k.ioctls.end());
    return k;
}

// ------------------------------------------------------------------ state
//
// Written on the main thread in seccomp_prepare(), before any other thread
// exists and before any filter is installed; read-only afterwards (the
// SIGSYS handler reads it).

constexpr int kNames = 512;
std::array<const char*, kNames> g_names{};  // from libseccomp, resolved once
std::atomic<SeccompMode> g_mode{SeccompMode::Off};
std::array<std::vector<sock_filter>, std::size(kThreadKinds)> g_programs;
std::optional<ThreadKind> g_test_violation;
std::array<std::atomic<bool>, std::size(kThreadKinds)> g_test_done{};
std::atomic<void (*)()> g_exit_hook{nullptr};

// Per thread, for the handler's line (no syscall needed to find them).
thread_local char t_name[16];
thread_local int t_kind = -1;

// ------------------------------------------------------------------ handler
//
// Async-signal-safe: formats into a stack buffer with no allocation, one
// write(2); then either exits (On) or carries the call out (Log).

struct LineBuf {
    char buf[256];
    size_t len = 0;
    void put(const char* s) {
        while (*s && len < sizeof buf - 1) buf[len++] = *s++;
    }
    void put_num(long v) {
        char tmp[24];
        int n = 0;
        bool neg = v < 0;
        unsigned long u = neg ? 0ul - (unsigned long)v : (unsigned long)v;
        do tmp[n++] = char('0' + u % 10), u /= 10;
        while (u && n < 23);
        if (neg) put("-");
        while (n && len < sizeof buf - 1) buf[len++] = tmp[--n];
    }
};

const char* kind_name(int k) {
    static constexpr const char* names[] = {"control", "vcpu", "io", "console", "controller"};
    return k >= 0 && k < int(std::size(names)) ? names[k] : nullptr;
}

void on_sigsys(int, siginfo_t* info, void* context) {
    int saved_errno = errno;
    auto* uc = static_cast<ucontext_t*>(context);
    int nr = info->si_syscall;
    LineBuf line;
    line.put("vireo: seccomp: thread ");
    if (t_kind >= 0) {
        line.put("\"");
        line.put(t_name);
        line.put("\" (");
        line.put(kind_name(t_kind));
        line.put(")");
    } else {
        // A thread that did not install a filter of its own runs under the
        // one it inherited: the control thread's.
        line.put("tid ");
        line.put_num(long(::syscall(SYS_gettid)));
        line.put(" (inherits control)");
    }
    line.put(" made a forbidden syscall: ");
    line.put(nr >= 0 && nr < kNames && g_names[size_t(nr)] ? g_names[size_t(nr)] : "?");
    line.put(" (");
    line.put_num(nr);
    bool log_only = g_mode.load(std::memory_order_relaxed) == SeccompMode::Log;
    line.put(log_only ? "); allowed (--seccomp log)\n" : "); exiting\n");
    ssize_t ignored = ::write(STDERR_FILENO, line.buf, line.len);
    (void)ignored;
    if (!log_only) {
        if (auto hook = g_exit_hook.load(std::memory_order_relaxed)) hook();
        ::_exit(VIREO_EXIT_HOST_ERROR);
    }
    // Log: carry the call out from the escape address and hand its result
    // back as if the kernel had run it. Calls that create or end a context
    // cannot be replayed from inside a handler: they fail with ENOSYS.
    greg_t* g = uc->uc_mcontext.gregs;
    long result;
    if (nr == SCMP_SYS(clone) || nr == SCMP_SYS(clone3) || nr == SCMP_SYS(fork) || nr == SCMP_SYS(vfork) ||
        nr == SCMP_SYS(execve) || nr == SCMP_SYS(execveat) || nr == SCMP_SYS(rt_sigreturn))
        result = -ENOSYS;
    else
        result = vireo_seccomp_escape_syscall(nr, long(g[REG_RDI]), long(g[REG_RSI]), long(g[REG_RDX]),
                                              long(g[REG_R10]), long(g[REG_R8]), long(g[REG_R9]));
    g[REG_RAX] = greg_t(result);
    errno = saved_errno;
}

// ------------------------------------------------------------------ compile

scmp_filter_ctx build_ctx(ThreadKind kind, std::string& error) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        error = "seccomp_init failed";
        return nullptr;
    }
    const pid_t self = ::getpid();
    auto fail = [&](int rc, int nr) {
        error = fmt::format("{} list: rule for {}: {}", to_string(kind), syscall_name(nr), std::strerror(-rc));
        seccomp_release(ctx);
        return nullptr;
    };
    KindLists k = lists_of(kind);
    for (const Rule& r : k.rules) {
        int rc = 0;
        switch (r.cond) {
            case Cond::None:
                if (r.nr == SCMP_SYS(ioctl)) {
                    // The kernel reads the request as an unsigned int: the
                    // upper half of the register is ignored there, so here too.
                    for (uint32_t req : k.ioctls)
                        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req))) < 0)
                            return fail(rc, r.nr);
                    continue;
                }
                rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 0);
                break;
            case Cond::NoExec: rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)); break;
            case Cond::ThreadOnly:
                rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
                break;
            case Cond::Enosys: rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), r.nr, 0); break;
            case Cond::SelfOnly: rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, SCMP_A0(SCMP_CMP_EQ, uint64_t(self))); break;
            case Cond::FilterOnly:
                rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
                                      SCMP_A1(SCMP_CMP_EQ, 0));
                break;
            case Cond::ThreadPrctl:
                for (uint64_t op : {uint64_t(PR_SET_NAME), uint64_t(PR_SET_TIMERSLACK)})
                    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, SCMP_A0(SCMP_CMP_EQ, op))) < 0) return fail(rc, r.nr);
                continue;
            case Cond::ReadOnlyOpen:
                rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1,
                                      SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
                break;
        }
        if (rc < 0) return fail(rc, r.nr);
    }
    return ctx;
}

// libseccomp 2.5 exports a program only to a file descriptor.
std::expected<std::vector<sock_filter>, std::string> export_program(scmp_filter_ctx ctx) {
    int fd = ::memfd_create("vireo-seccomp", MFD_CLOEXEC);
    if (fd < 0) return std::unexpected(fmt::format("memfd_create: {}", std::strerror(errno)));
    std::vector<sock_filter> prog;
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? ::lseek(fd, 0, SEEK_END) : -1;
    if (rc == 0 && size > 0 && size % off_t(sizeof(sock_filter)) == 0) {
        prog.resize(size_t(size) / sizeof(sock_filter));
        if (::pread(fd, prog.data(), size_t(size), 0) != size) prog.clear();
    }
    ::close(fd);
    if (prog.empty()) return std::unexpected(std::string("seccomp_export_bpf failed"));
    return prog;
}

// Log mode: a prefix that allows any call made from the escape address
// (and only there), then libseccomp's program. Its jumps are relative, so
// it runs unchanged behind the prefix.
//
// Why this and not the alternatives: SCMP_ACT_LOG only reaches the kernel
// audit log (not vireo's stderr, and not at all without auditd); a SIGSYS
// handler alone cannot re-issue the call (it would trap again); and
// SECCOMP_RET_USER_NOTIF needs a supervisor thread outside every filter and
// allows one listener per filter chain, which stacked filters (a vCPU thread
// under the control filter) would break. The escape address (the approach of
// Chromium's seccomp-bpf sandbox) costs two compares per syscall in log mode
// only; it is a hole by design -- code that jumps to it is unfiltered -- which
// is acceptable for a debugging mode and absent from --seccomp on.
std::vector<sock_filter> with_escape_prefix(const std::vector<sock_filter>& prog) {
    auto ip = uint64_t(uintptr_t(vireo_seccomp_escape_ret));
    constexpr uint32_t kIpLo = offsetof(seccomp_data, instruction_pointer);
    constexpr uint32_t kIpHi = kIpLo + 4;
    std::vector<sock_filter> out = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpLo),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(ip), 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpHi),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(ip >> 32), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    out.insert(out.end(), prog.begin(), prog.end());
    return out;
}

std::expected<std::vector<sock_filter>, std::string> compile(ThreadKind kind, SeccompMode mode) {
    std::string error;
    scmp_filter_ctx ctx = build_ctx(kind, error);
    if (!ctx) return std::unexpected(error);
    auto prog = export_program(ctx);
    seccomp_release(ctx);
    if (!prog) return prog;
    if (mode == SeccompMode::Log) return with_escape_prefix(*prog);
    return prog;
}

// socket() is on no list. An address family that does not exist makes it
// fail harmlessly where it is let through (--seccomp log): no fd to close.
void test_violation() { (void)::syscall(SYS_socket, -1, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

}  // namespace

std::expected<SeccompMode, std::string> parse_seccomp_mode(std::string_view text) {
    if (text == "on") return SeccompMode::On;
    if (text == "off") return SeccompMode::Off;
    if (text == "log") return SeccompMode::Log;
    return std::unexpected(fmt::format("--seccomp: '{}' is not on, off or log", text));
}

std::string_view to_string(SeccompMode mode) {
    switch (mode) {
        case SeccompMode::Off: return "off";
        case SeccompMode::Log: return "log";
        case SeccompMode::On: return "on";
    }
    return "?";
}

std::string_view to_string(ThreadKind kind) { return kind_name(int(kind)); }

std::optional<ThreadKind> parse_thread_kind(std::string_view text) {
    for (ThreadKind k : kThreadKinds)
        if (to_string(k) == text) return k;
    return std::nullopt;
}

std::string syscall_name(int nr) {
    if (nr >= 0 && nr < kNames && g_names[size_t(nr)]) return g_names[size_t(nr)];
    std::unique_ptr<char, decltype(&std::free)> name(seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr), &std::free);
    return name ? std::string(name.get()) : fmt::format("syscall_{}", nr);
}

AllowList allow_list(ThreadKind kind) {
    KindLists k = lists_of(kind);
    AllowList a;
    for (const Rule& r : k.rules)
        if (r.cond != Cond::Enosys) a.syscalls.push_back(r.nr);
    a.ioctls = std::move(k.ioctls);
    return a;
}

std::expected<size_t, std::string> seccomp_program_size(ThreadKind kind, SeccompMode mode) {
    auto prog = compile(kind, mode);
    if (!prog) return std::unexpected(prog.error());
    return prog->size();
}

SeccompMode seccomp_mode() { return g_mode.load(std::memory_order_relaxed); }

void set_seccomp_exit_hook(void (*hook)()) { g_exit_hook.store(hook, std::memory_order_relaxed); }

std::expected<void, std::string> seccomp_prepare(SeccompMode mode) {
    if (mode == SeccompMode::Off) {
        g_mode.store(mode);
        return {};
    }
    if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
        return std::unexpected(fmt::format("seccomp: this kernel has no seccomp ({}); run with --seccomp off", std::strerror(errno)));
    for (int nr = 0; nr < kNames; ++nr)
        if (!g_names[size_t(nr)]) g_names[size_t(nr)] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);  // kept for the process
    for (ThreadKind k : kThreadKinds) {
        auto prog = compile(k, mode);
        if (!prog) return std::unexpected("seccomp: " + prog.error());
        g_programs[size_t(k)] = std::move(*prog);
    }
    if (const char* env = std::getenv("VIREO_TEST_SECCOMP_VIOLATION"); env && *env) {
        g_test_violation = parse_thread_kind(env);
        if (!g_test_violation) return std::unexpected(fmt::format("VIREO_TEST_SECCOMP_VIOLATION: '{}' is no thread kind", env));
    }
    struct sigaction sa {};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSYS, &sa, nullptr) != 0) return std::unexpected(fmt::format("seccomp: sigaction: {}", std::strerror(errno)));
    // Required to install a filter without CAP_SYS_ADMIN; inherited by every
    // thread created from here on. vireo never executes anything, so it
    // loses nothing (and a setuid program could not gain privileges anyway).
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return std::unexpected(fmt::format("seccomp: PR_SET_NO_NEW_PRIVS: {}", std::strerror(errno)));
    g_mode.store(mode);
    return {};
}

void seccomp_install(ThreadKind kind, std::string_view thread_name) {
    if (g_mode.load(std::memory_order_relaxed) == SeccompMode::Off) return;
    const auto& prog = g_programs[size_t(kind)];
    size_t n = std::min(thread_name.size(), sizeof t_name - 1);
    std::memcpy(t_name, thread_name.data(), n);
    t_name[n] = '\0';
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), const_cast<sock_filter*>(prog.data())};
    if (prog.empty() || ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
        log_error("seccomp: thread \"{}\" ({}): cannot install its filter: {}; exiting", t_name, to_string(kind),
                  prog.empty() ? "not compiled" : std::strerror(errno));
        if (auto hook = g_exit_hook.load(std::memory_order_relaxed)) hook();
        ::_exit(VIREO_EXIT_HOST_ERROR);
    }
    t_kind = int(kind);
    if (g_test_violation == kind && !g_test_done[size_t(kind)].exchange(true)) test_violation();
}

}  // namespace vireo::security
