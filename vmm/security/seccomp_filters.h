// Per-thread seccomp-bpf allow-lists: each kind of vireo thread
// may make exactly the system calls it uses, and for ioctl only the request
// numbers it uses. A forbidden call kills vireo with one line naming the
// thread and the call (--seccomp on), or is logged and carried out
// (--seccomp log, for finding what a list lacks); --seccomp off installs
// nothing.
//
//   security::seccomp_prepare(mode)    once, on the main thread, before any
//                                      other thread exists: compiles every
//                                      kind's filter, installs the SIGSYS
//                                      handler, sets no_new_privs
//   security::seccomp_install(kind, name)   on each thread, after its set-up
//                                      and before it runs guest code
//
// Filters stack: a thread created by an already filtered thread keeps its
// creator's filter and adds its own, and the kernel applies the stricter
// verdict. The control (main) thread installs its filter before it starts
// any guest, so every vCPU, I/O and console thread -- also those of a guest
// rebuilt for a restart -- runs under the control filter AND its own. The
// control list is therefore a superset of every other list (checked by a
// unit test), and each thread's effective list is its own.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vireo::security {

enum class SeccompMode { Off, Log, On };
std::expected<SeccompMode, std::string> parse_seccomp_mode(std::string_view text);
std::string_view to_string(SeccompMode mode);

enum class ThreadKind : uint8_t {
    Control,     // the main thread: event loop, control socket, metrics, builds (and rebuilds) machines
    Vcpu,        // KVM_RUN and the device models it dispatches to
    Io,          // a guest's io_uring thread (virtio-blk, virtio-balloon)
    Console,     // console input (stdin -> the UART)
    Controller,  // the learned controller: /proc/pressure, /proc/stat, posts tasks to the control loop
};
inline constexpr ThreadKind kThreadKinds[] = {ThreadKind::Control, ThreadKind::Vcpu, ThreadKind::Io, ThreadKind::Console,
                                              ThreadKind::Controller};
std::string_view to_string(ThreadKind kind);
std::optional<ThreadKind> parse_thread_kind(std::string_view text);

// What a kind may call, for tests and the report: system call numbers
// (x86-64, sorted) and the ioctl request numbers allowed.
struct AllowList {
    std::vector<int> syscalls;
    std::vector<uint32_t> ioctls;
};
AllowList allow_list(ThreadKind kind);
// "read", "KVM_RUN", ...; "syscall_N" for a number vireo has no name for.
std::string syscall_name(int nr);

// Once per process, on the main thread before any other thread starts (and
// before privileges are dropped: nothing here needs them). Off does
// nothing. Reads VIREO_TEST_SECCOMP_VIOLATION (see seccomp_install).
std::expected<void, std::string> seccomp_prepare(SeccompMode mode);
SeccompMode seccomp_mode();

// Installs `kind`'s filter on the calling thread; `thread_name` is what a
// violation names (at most 15 characters are kept). A no-op unless
// seccomp_prepare() set Log or On. Cannot fail short of a kernel without
// seccomp (checked by prepare); a failure then ends vireo (host error)
// rather than run a thread unfiltered.
//
// Test hook: with VIREO_TEST_SECCOMP_VIOLATION=<kind> in the environment,
// the first thread of that kind to install its filter then makes one call
// outside every list (socket(2), with an address family that does
// not exist, so it fails harmlessly where --seccomp log lets it through), so tests can watch the
// violation path end to end.
void seccomp_install(ThreadKind kind, std::string_view thread_name);

// Compiles `kind`'s filter for `mode` and returns the BPF program's size in
// instructions (tests; also proves the list compiles).
std::expected<size_t, std::string> seccomp_program_size(ThreadKind kind, SeccompMode mode);

// An async-signal-safe function the violation handler calls before vireo
// exits (the console puts the terminal back). One; later calls replace it.
void set_seccomp_exit_hook(void (*hook)());

}  // namespace vireo::security
