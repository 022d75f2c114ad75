// /dev/kvm integration tests: boot the ring-3 test guest (tests/guests/testguest)
// with build/vireo and check what it prints and how vireo exits.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

class TestGuest : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()),
                                   missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
    }

    // vireo run --kernel build/testguest --cmdline workload=W [--mem 64M] [extra...]
    static std::vector<std::string> args(const std::string& workload, std::vector<std::string> extra = {}) {
        std::vector<std::string> a{"run", "--kernel", testguest_binary(), "--cmdline", "workload=" + workload};
        if (std::find(extra.begin(), extra.end(), "--mem") == extra.end()) a.insert(a.end(), {"--mem", "64M"});
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }

    static RunResult run(const std::string& workload, std::vector<std::string> extra = {},
                         std::chrono::milliseconds timeout = 30s) {
        return run_vireo(args(workload, std::move(extra)), timeout);
    }
};

// A run that ended by itself with `status`; otherwise prints all it captured.
#define EXPECT_EXIT_STATUS(r, want)                                   \
    do {                                                              \
        const RunResult& r_ = (r);                                    \
        EXPECT_FALSE(r_.timed_out) << r_.describe();                  \
        EXPECT_TRUE(r_.exited && r_.status == (want))                 \
            << "want exit " << (want) << ", got " << r_.describe();   \
    } while (0)

#define EXPECT_OUTPUT(r, text) \
    EXPECT_NE((r).out.find(text), std::string::npos) << "missing \"" << (text) << "\"; got " << (r).describe()

TEST_F(TestGuest, HelloPrintsAndPowersOff) {
    auto r = run("hello");
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "vireo testguest: hello from vCPU 0 of 1");
}

TEST_F(TestGuest, NoWorkloadMeansHello) {
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M"}, 30s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "hello from vCPU 0 of 1");
}

TEST_F(TestGuest, HelloCountsVcpus) {
    auto r = run("hello", {"--cpus", "2"});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "vireo testguest: hello from vCPU 0 of 2");
}

TEST_F(TestGuest, SmpAllVcpusComeOnline) {
    auto r = run("smp", {"--cpus", "2"});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "vireo testguest: vCPU 0 online");
    EXPECT_OUTPUT(r, "vireo testguest: vCPU 1 online");
    EXPECT_OUTPUT(r, "smp: 2 of 2 vCPUs online");
}

// More vCPUs than host cores (2 here): all still run.
TEST_F(TestGuest, SmpOvercommitted) {
    auto r = run("smp", {"--cpus", "4"});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "smp: 4 of 4 vCPUs online");
}

TEST_F(TestGuest, PanicExitsWithGuestPanic) {
    auto r = run("panic");
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_GUEST_PANIC);
    EXPECT_OUTPUT(r, "vireo testguest: panic:");
}

TEST_F(TestGuest, TripleFaultExitsWithTripleFault) {
    auto r = run("triple-fault");
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_TRIPLE_FAULT);
    EXPECT_OUTPUT(r, "triple-fault: executing ud2");
    EXPECT_EQ(r.out.find("still running after ud2"), std::string::npos) << r.describe();
}

TEST_F(TestGuest, TripleFaultWithTwoVcpus) {
    auto r = run("triple-fault", {"--cpus", "2"});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_TRIPLE_FAULT);
}

class TestExitStatus : public TestGuest, public ::testing::WithParamInterface<std::pair<unsigned, int>> {};

TEST_P(TestExitStatus, VireoExitsWithTheStatusTheGuestWrote) {
    auto [written, want] = GetParam();
    auto r = run("exit:" + std::to_string(written));
    EXPECT_EXIT_STATUS(r, want);
}

// vireo exits with the status & 0xff, like QEMU's isa-debug-exit.
INSTANTIATE_TEST_SUITE_P(Statuses, TestExitStatus,
                         ::testing::Values(std::pair{7u, 7}, std::pair{0u, 0}, std::pair{42u, 42}, std::pair{255u, 255},
                                           std::pair{263u, 7}));

TEST_F(TestGuest, CpuBusyLoopRunsForItsTime) {
    auto r = run("cpu:200");
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "cpu: ");
    EXPECT_OUTPUT(r, " iterations in ");
    // The loop runs 200 ms of TSC time: if vireo's tsc_khz is right, that is
    // 200 ms of wall time too.
    EXPECT_GE(r.elapsed.count(), 180) << r.describe();
}

// Without vireo's tsc_khz the guest estimates the TSC rate from the idle
// port; its 200 ms must still be about 200 ms (the estimate errs long).
TEST_F(TestGuest, CpuWithCalibratedTsc) {
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline",
                        "workload=cpu:200 tsc=calibrate"},
                       30s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "TSC frequency not given, estimated");
    EXPECT_OUTPUT(r, "estimated TSC)");
    EXPECT_GE(r.elapsed.count(), 180) << r.describe();
}

TEST_F(TestGuest, MemTouchesAndVerifies) {
    auto r = run("mem:16");
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "mem: wrote and verified 16 MiB (4096 pages)");
}

TEST_F(TestGuest, MemLargerGuest) {
    auto r = run("mem:100", {"--mem", "128M", "--cpus", "2"});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "mem: wrote and verified 100 MiB (25600 pages)");
}

TEST_F(TestGuest, MemBeyondFreeAreaFails) {
    auto r = run("mem:64");  // all of RAM: more than the free area
    EXPECT_EXIT_STATUS(r, 1);
    EXPECT_OUTPUT(r, "mem: 64 MiB requested, but the free area");
}

TEST_F(TestGuest, PioLoop) {
    auto r = run("pio-loop:100000", {}, 60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "pio-loop: 100000 exits in ");
    EXPECT_OUTPUT(r, " cycles per exit");
}

TEST_F(TestGuest, UnknownWorkloadExits2) {
    auto r = run("no-such-workload");
    EXPECT_EXIT_STATUS(r, 2);
    EXPECT_OUTPUT(r, "unknown workload");
}

TEST_F(TestGuest, BadWorkloadArgumentExits2) {
    auto r = run("cpu:abc");
    EXPECT_EXIT_STATUS(r, 2);
    EXPECT_OUTPUT(r, "cpu: bad argument 'abc'");
    auto r2 = run("cpu");
    EXPECT_EXIT_STATUS(r2, 2);
    EXPECT_OUTPUT(r2, "needs an argument");
}

// The guest reads other options from the command line; they do not disturb it.
TEST_F(TestGuest, ExtraCommandLineOptionsAreIgnored) {
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline",
                        "qd=32 workload=exit:9 disk=/dev/vda"},
                       30s);
    EXPECT_EXIT_STATUS(r, 9);
}

class HangThenSignal : public TestGuest, public ::testing::WithParamInterface<std::pair<int, int>> {};

// A guest that never exits (every vCPU spins in ring 3) must still stop
// promptly and cleanly when vireo is told to.
TEST_P(HangThenSignal, StopsPromptlyAndCleanly) {
    auto [sig, cpus] = GetParam();
    VireoProcess p(args("hang", {"--cpus", std::to_string(cpus)}));
    ASSERT_FALSE(p.wait(1s)) << "vireo ended before the signal: " << p.result().describe();
    p.send_signal(sig);
    auto t0 = std::chrono::steady_clock::now();
    bool stopped = p.wait(5s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (!stopped) p.finish(0ms);  // kill it so the failure message is complete
    const RunResult& r = p.result();
    EXPECT_TRUE(stopped) << "still running 5 s after " << strsignal(sig) << ": " << r.describe();
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_LT(took.count(), 5000);
    EXPECT_OUTPUT(r, "hang: spinning");
    // The process is gone: reaped, and no thread of it is left in /proc.
    EXPECT_NE(::access(("/proc/" + std::to_string(p.pid())).c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(Signals, HangThenSignal,
                         ::testing::Values(std::pair{SIGTERM, 1}, std::pair{SIGTERM, 2}, std::pair{SIGINT, 2}),
                         [](const auto& info) {
                             return std::string(info.param.first == SIGTERM ? "SIGTERM" : "SIGINT") + "_" +
                                    std::to_string(info.param.second) + "cpus";
                         });

TEST_F(TestGuest, ConsoleNoneKeepsExitStatus) {
    auto r = run("exit:7", {"--console", "none"});
    EXPECT_EXIT_STATUS(r, 7);
    EXPECT_EQ(r.out.find("vireo testguest"), std::string::npos) << r.describe();
    auto h = run("hello", {"--console", "none"});
    EXPECT_EXIT_STATUS(h, VIREO_EXIT_OK);
    EXPECT_EQ(h.out.find("vireo testguest"), std::string::npos) << h.describe();
    auto p = run("panic", {"--console", "none"});
    EXPECT_EXIT_STATUS(p, VIREO_EXIT_GUEST_PANIC);
}

TEST_F(TestGuest, ConsoleToFile) {
    char dir[] = "/tmp/vireo-console-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string path = std::string(dir) + "/console.log";
    auto r = run("hello", {"--console", "file:" + path});
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    std::ifstream f(path);
    std::stringstream text;
    text << f.rdbuf();
    EXPECT_NE(text.str().find("hello from vCPU 0 of 1"), std::string::npos) << "console file: " << text.str();
    EXPECT_EQ(r.out.find("vireo testguest"), std::string::npos) << r.describe();
    ::unlink(path.c_str());
    ::rmdir(dir);
}

}  // namespace
}  // namespace vireo::test
