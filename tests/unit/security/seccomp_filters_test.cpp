// The per-thread seccomp filters (vmm/security/seccomp_filters.h): every
// list compiles, the control list covers the threads it creates, and in a
// child process each filter lets its own calls through and ends the process
// with the named log line on anything else (or logs and goes on in log mode).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "vmm/security/seccomp_filters.h"

namespace vireo::security {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

class SeccompTest : public ::testing::Test {
protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The tests that install a filter in a child: sanitizer runtimes make calls
// of their own (sigaltstack, their allocator, reports) that no list has.
#define SKIP_IF_SANITIZED() \
    if (kSanitized) GTEST_SKIP() << "sanitizer runtimes make syscalls outside vireo's lists"

// Runs in the death test's child: prepare + install, or exit 99.
void filtered(SeccompMode mode, ThreadKind kind, const char* name = "t") {
    if (!seccomp_prepare(mode)) std::_Exit(99);
    seccomp_install(kind, name);
}

TEST_F(SeccompTest, EveryListCompilesInBothModes) {
    for (ThreadKind k : kThreadKinds)
        for (SeccompMode m : {SeccompMode::On, SeccompMode::Log}) {
            auto size = seccomp_program_size(k, m);
            ASSERT_TRUE(size.has_value()) << to_string(k) << ": " << size.error();
            EXPECT_GT(*size, 5u);
            EXPECT_LT(*size, 4096u);  // BPF_MAXINSNS
        }
}

TEST_F(SeccompTest, ListSizes) {
    // The numbers the README reports (Firecracker: 27 vCPU / 31 API / 50 VMM).
    for (ThreadKind k : kThreadKinds) {
        auto a = allow_list(k);
        std::printf("seccomp: %-10s %3zu syscalls, %2zu ioctl requests, %4zu BPF instructions\n", std::string(to_string(k)).c_str(),
                    a.syscalls.size(), a.ioctls.size(), *seccomp_program_size(k, SeccompMode::On));
        EXPECT_TRUE(std::is_sorted(a.syscalls.begin(), a.syscalls.end()));
        EXPECT_EQ(std::adjacent_find(a.syscalls.begin(), a.syscalls.end()), a.syscalls.end());
    }
    EXPECT_LE(allow_list(ThreadKind::Vcpu).syscalls.size(), 27u);
}

// Filters stack: threads the control thread creates run under its filter
// too, so it must allow what each of them allows.
TEST_F(SeccompTest, ControlListCoversEveryOtherList) {
    auto control = allow_list(ThreadKind::Control);
    for (ThreadKind k : kThreadKinds) {
        auto a = allow_list(k);
        for (int nr : a.syscalls)
            EXPECT_TRUE(std::binary_search(control.syscalls.begin(), control.syscalls.end(), nr))
                << to_string(k) << " allows " << syscall_name(nr) << ", control does not";
        for (uint32_t req : a.ioctls)
            EXPECT_TRUE(std::binary_search(control.ioctls.begin(), control.ioctls.end(), req))
                << to_string(k) << " allows ioctl " << std::hex << req << ", control does not";
    }
}

TEST_F(SeccompTest, NamesAndModes) {
    EXPECT_EQ(syscall_name(SYS_socket), "socket");
    EXPECT_EQ(syscall_name(SYS_ioctl), "ioctl");
    EXPECT_EQ(*parse_seccomp_mode("on"), SeccompMode::On);
    EXPECT_EQ(*parse_seccomp_mode("log"), SeccompMode::Log);
    EXPECT_EQ(*parse_seccomp_mode("off"), SeccompMode::Off);
    EXPECT_FALSE(parse_seccomp_mode("yes").has_value());
    for (ThreadKind k : kThreadKinds) EXPECT_EQ(parse_thread_kind(to_string(k)), k);
    EXPECT_FALSE(parse_thread_kind("gpu").has_value());
    // The test hook's syscall is on no list.
    for (ThreadKind k : kThreadKinds) {
        auto a = allow_list(k);
        EXPECT_FALSE(std::binary_search(a.syscalls.begin(), a.syscalls.end(), int(SYS_socket))) << to_string(k);
    }
}

TEST_F(SeccompTest, ForbiddenSyscallEndsWithNamedLine) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            filtered(SeccompMode::On, ThreadKind::Vcpu, "CPU 0/gvm0");
            (void)::syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1),
        R"(vireo: seccomp: thread "CPU 0/gvm0" \(vcpu\) made a forbidden syscall: socket \(41\); exiting)");
}

TEST_F(SeccompTest, TestHookViolatesOnceAfterInstall) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            ::setenv("VIREO_TEST_SECCOMP_VIOLATION", "controller", 1);
            filtered(SeccompMode::On, ThreadKind::Controller, "controller");
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(thread "controller" \(controller\) made a forbidden syscall: socket \(41\); exiting)");
}

TEST_F(SeccompTest, LogModeLogsAndCarriesTheCallOut) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            pid_t parent = ::getppid();
            filtered(SeccompMode::Log, ThreadKind::Vcpu, "CPU 1/gx");
            // getppid is on no vCPU list: logged, then really made.
            pid_t seen = pid_t(::syscall(SYS_getppid));
            std::_Exit(seen == parent ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), R"(thread "CPU 1/gx" \(vcpu\) made a forbidden syscall: getppid \(110\); allowed \(--seccomp log\))");
}

TEST_F(SeccompTest, VcpuIoctlsAreRestrictedByRequest) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            filtered(SeccompMode::On, ThreadKind::Vcpu);
            // KVM_RUN on a bad fd is allowed through (and fails with EBADF)...
            if (::ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF) std::_Exit(3);
            // ...KVM_CREATE_VM is not for a vCPU thread.
            (void)::ioctl(-1, KVM_CREATE_VM, 0);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(made a forbidden syscall: ioctl \(16\); exiting)");
}

TEST_F(SeccompTest, NoExecutableMappings) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            filtered(SeccompMode::On, ThreadKind::Io);
            void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) std::_Exit(3);
            (void)::mprotect(p, 4096, PROT_READ | PROT_EXEC);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(forbidden syscall: mprotect \(10\); exiting)");
}

// The control filter, then a vCPU filter on top (a vCPU thread created by
// the filtered control thread): the stricter list wins.
TEST_F(SeccompTest, FiltersStack) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            filtered(SeccompMode::On, ThreadKind::Control, "vireo");
            termios t;
            if (::tcgetattr(0, &t) != 0 && errno == ENOSYS) std::_Exit(3);  // TCGETS: allowed for control
            std::thread th([] {
                seccomp_install(ThreadKind::Vcpu, "CPU 0/gs");
                termios t2;
                (void)::tcgetattr(0, &t2);  // not for a vCPU thread
            });
            th.join();
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(thread "CPU 0/gs" \(vcpu\) made a forbidden syscall: ioctl)");
}

TEST_F(SeccompTest, ControlMayCreateThreadsButNotProcesses) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            filtered(SeccompMode::On, ThreadKind::Control, "vireo");
            std::thread th([] {});  // clone3 -> ENOSYS -> clone(CLONE_THREAD)
            th.join();
            (void)::fork();
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(thread "vireo" \(control\) made a forbidden syscall: clone \(56\); exiting)");
}

// What the controller does: read /proc, sleep, lock, post through
// an eventfd, start worker threads; and it may not open a file for writing.
TEST_F(SeccompTest, ControllerCanDoItsJob) {
    SKIP_IF_SANITIZED();
    EXPECT_EXIT(
        {
            int efd = ::eventfd(0, EFD_CLOEXEC);
            // As in vireo, threads were created before (glibc installs its
            // internal signal handlers at the first pthread_create).
            std::thread([] {}).join();
            filtered(SeccompMode::On, ThreadKind::Controller, "controller");
            for (const char* path : {"/proc/stat", "/proc/self/stat"}) {
                int fd = ::open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) std::_Exit(3);
                char buf[256];
                if (::read(fd, buf, sizeof buf) <= 0) std::_Exit(4);
                ::close(fd);
            }
            std::mutex m;
            std::thread worker([&] { std::lock_guard l(m); });
            worker.join();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            uint64_t one = 1;
            if (::write(efd, &one, sizeof one) != sizeof one) std::_Exit(5);
            (void)::open("/tmp/vireo-seccomp-should-not-exist", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(1), R"(thread "controller" \(controller\) made a forbidden syscall: openat)");
}

TEST_F(SeccompTest, OffInstallsNothing) {
    EXPECT_EXIT(
        {
            filtered(SeccompMode::Off, ThreadKind::Vcpu);
            int fd = int(::syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            std::_Exit(fd >= 0 ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace vireo::security
