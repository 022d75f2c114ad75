// Hardening on /dev/kvm: vireo runs every thread under its seccomp filter
// (the default), a forbidden syscall in any thread kind ends vireo with the
// line naming the thread and the call and exit status 1, --seccomp log
// logs it and the guest runs to completion, and no fd vireo holds while a
// guest runs with a disk, a balloon, the control socket and the metrics
// port lacks FD_CLOEXEC.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"
#include "vmm/control/client.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Seccomp : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()),
                                   missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
        char tmpl[] = "/tmp/vireo-seccomp-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        disk_ = dir_ + "/disk.img";
        std::ofstream(disk_).close();
        fs::resize_file(disk_, 4 << 20);
    }
    void TearDown() override {
        ::unsetenv("VIREO_TEST_SECCOMP_VIOLATION");
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // A guest with every thread kind vireo has: vCPU, I/O (a disk), console
    // input (stdin is /dev/null, still read), control (always).
    std::vector<std::string> args(const std::string& workload, std::vector<std::string> extra = {}) const {
        std::vector<std::string> a{"run", "--kernel", testguest_binary(), "--cmdline", "workload=" + workload, "--mem", "64M",
                                   "--disk", disk_, "--control", dir_ + "/c.sock"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }

    std::string dir_, disk_;
};

const std::map<std::string, std::string> kThreadNames = {
    {"control", "vireo"}, {"vcpu", "CPU 0/gvm0"}, {"io", "io/gvm0"}, {"console", "console"}};

TEST_F(Seccomp, EachThreadKindDiesOnAForbiddenSyscallWithANamedLine) {
    for (const auto& [kind, name] : kThreadNames) {
        SCOPED_TRACE(kind);
        ::setenv("VIREO_TEST_SECCOMP_VIOLATION", kind.c_str(), 1);
        auto r = run_vireo(args("cpu:5000"), 30s);
        EXPECT_FALSE(r.timed_out) << r.describe();
        EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_HOST_ERROR) << r.describe();
        std::string line = "vireo: seccomp: thread \"" + name + "\" (" + kind + ") made a forbidden syscall: socket (41); exiting";
        EXPECT_NE(r.err.find(line), std::string::npos) << "missing: " << line << "\n" << r.describe();
        // It ended at once, not after the 5 s workload.
        EXPECT_LT(r.elapsed, 4000ms) << r.describe();
    }
}

TEST_F(Seccomp, LogModeLogsAndTheGuestRunsToCompletion) {
    for (const auto& [kind, name] : kThreadNames) {
        SCOPED_TRACE(kind);
        ::setenv("VIREO_TEST_SECCOMP_VIOLATION", kind.c_str(), 1);
        auto r = run_vireo(args("hello", {"--seccomp", "log"}), 30s);
        EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
        std::string line = "vireo: seccomp: thread \"" + name + "\" (" + kind +
                           ") made a forbidden syscall: socket (41); allowed (--seccomp log)";
        EXPECT_NE(r.err.find(line), std::string::npos) << "missing: " << line << "\n" << r.describe();
        EXPECT_NE(r.out.find("hello from vCPU 0"), std::string::npos) << r.describe();
    }
}

// The controller thread installs ThreadKind::Controller; until a
// build has one, the unit tests cover its list and this says so.
TEST_F(Seccomp, ControllerThreadKind) {
    ::setenv("VIREO_TEST_SECCOMP_VIOLATION", "controller", 1);
    auto r = run_vireo(args("cpu:1000"), 30s);
    if (r.err.find("(controller) made a forbidden syscall") == std::string::npos) {
        EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
        GTEST_SKIP() << "this vireo runs no controller thread for `vireo run`; its filter is unit-tested";
    }
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_HOST_ERROR) << r.describe();
}

std::string comm_of(const fs::path& task) {
    std::ifstream f(task / "comm");
    std::string s;
    std::getline(f, s);
    return s;
}

// Waits until the guest's vCPU thread exists (it prints first).
bool wait_for_threads(VireoProcess& p, pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        for (const auto& t : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task"))
            if (comm_of(t.path()).starts_with("CPU 0")) return true;
        if (p.wait(50ms)) return false;
    }
    return false;
}

TEST_F(Seccomp, EveryThreadIsFilteredByDefaultAndNoneWithOff) {
    for (bool on : {true, false}) {
        SCOPED_TRACE(on ? "default" : "--seccomp off");
        VireoProcess p(args("cpu:3000", on ? std::vector<std::string>{} : std::vector<std::string>{"--seccomp", "off"}));
        ASSERT_TRUE(wait_for_threads(p, p.pid())) << p.finish(1s).describe();
        std::map<std::string, int> filters;  // thread name ("main" for the main thread) -> Seccomp_filters
        for (const auto& t : fs::directory_iterator(fs::path("/proc") / std::to_string(p.pid()) / "task")) {
            auto st = status_of((t.path() / "status").string());
            std::string name = t.path().filename() == std::to_string(p.pid()) ? "main" : comm_of(t.path());
            EXPECT_EQ(st["Seccomp"], on ? "2" : "0") << name;
            EXPECT_EQ(st["NoNewPrivs"], on ? "1" : "0") << name;
            if (st.count("Seccomp_filters")) filters[name] = std::stoi(st["Seccomp_filters"]);
        }
        if (on && !filters.empty()) {
            // The control thread's own; every other thread: control's + its own.
            EXPECT_EQ(filters["main"], 1);
            EXPECT_EQ(filters["CPU 0/gvm0"], 2);
            EXPECT_EQ(filters["io/gvm0"], 2);
            EXPECT_EQ(filters["console"], 2);
        }
        p.send_signal(SIGTERM);
        auto r = p.finish(10s);
        EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    }
}

// No fd leaks into anything vireo spawns. While a guest runs with
// a disk, a balloon, the control socket (and a client on it) and the
// metrics listener, every fd above stderr has O_CLOEXEC.
TEST_F(Seccomp, EveryFdIsCloseOnExec) {
    // Descriptors this test process holds without FD_CLOEXEC were inherited
    // by vireo from whoever started the tests: not vireo's to close.
    std::set<int> inherited;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
        int fd = std::stoi(e.path().filename().string());
        int fl = ::fcntl(fd, F_GETFD);
        if (fd > 2 && fl >= 0 && !(fl & FD_CLOEXEC)) inherited.insert(fd);
    }
    VireoProcess p(args("balloon secs=4", {"--balloon", "stats=1", "--metrics-listen", "127.0.0.1:0"}));
    ASSERT_TRUE(wait_for_threads(p, p.pid())) << p.finish(1s).describe();
    auto client = control::ControlClient::connect(dir_ + "/c.sock");
    ASSERT_TRUE(client.has_value()) << client.error();
    auto info = client->call({{"request", "info"}});
    ASSERT_TRUE(info.has_value()) << info.error();
    std::this_thread::sleep_for(1500ms);  // the balloon's stats timer has fired, the disk is set up
    fs::path fdinfo = fs::path("/proc") / std::to_string(p.pid()) / "fdinfo";
    int checked = 0;
    for (const auto& e : fs::directory_iterator(fdinfo)) {
        int fd = std::stoi(e.path().filename().string());
        if (fd <= 2 || inherited.count(fd)) continue;
        std::ifstream f(e.path());
        std::string key, flags;
        while (f >> key)
            if (key == "flags:") {
                f >> flags;
                break;
            }
        if (flags.empty()) continue;  // closed meanwhile
        std::error_code ec;
        auto target = fs::read_symlink(fs::path("/proc") / std::to_string(p.pid()) / "fd" / std::to_string(fd), ec);
        EXPECT_NE(std::stoul(flags, nullptr, 8) & 02000000, 0u)
            << "fd " << fd << " (" << target.string() << ") lacks O_CLOEXEC: flags " << flags;
        ++checked;
    }
    // /dev/kvm, VM, vCPU, guest RAM, eventfds, io_uring, the disk, the
    // sockets, epoll, signalfd, BPF and perf fds: many.
    EXPECT_GT(checked, 15);
    auto r = p.finish(30s);
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
}

}  // namespace
}  // namespace vireo::test
