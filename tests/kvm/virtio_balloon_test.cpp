// virtio-balloon on this host's /dev/kvm with the ring-3 test guest: an
// inflation lowers vireo's resident guest memory (RssShmem: guest RAM is a
// shared memfd mapping), a deflation gives it back to the guest (which
// touches the pages again, so RSS rises), and the guest's stats arrive.
// The targets come from the control socket or the test-only
// `target-at=SECONDS:MIB` option.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"
#include "vmm/control/client.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

// RssShmem of `pid` in KiB, -1 if gone.
long rss_shmem_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("RssShmem:", 0) == 0) return std::stol(line.substr(9));
    return -1;
}

class VirtioBalloonKvm : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()),
                                   missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

#define EXPECT_EXIT_OK(r)                                                                  \
    do {                                                                                   \
        EXPECT_FALSE((r).timed_out) << (r).describe();                                     \
        EXPECT_TRUE((r).exited && (r).status == 0) << "want exit 0, got " << (r).describe(); \
    } while (0)

TEST_F(VirtioBalloonKvm, InflateLowersRssDeflateRestoresIt) {
    // 128 MiB touched; once the guest says so, a target of 96 MiB over the
    // control socket; once it holds them, 0 again; then a poweroff. Driven
    // by what the guest reports, not by the clock: touching 128 MiB takes
    // milliseconds natively but seconds of nested page faults under TCG in
    // the QEMU L1.
    char dir[] = "/tmp/vireo-balloon-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string sock = std::string(dir) + "/c.sock";
    VireoProcess p({"run", "--kernel", testguest_binary(), "--mem", "256M", "--cmdline",
                    "workload=balloon secs=600 touch=128", "--balloon", "stats=1", "--control", sock, "--stats"});
    auto call = [&](const nlohmann::json& req) {
        auto c = control::ControlClient::connect(sock);
        if (!c) return std::string("connect: ") + c.error();
        auto r = c->call(req, 20s);
        return r ? r->dump() : r.error();
    };
    long peak_before = 0, low = -1, peak_after = 0;
    enum { Touching, Inflating, Inflated, Deflating, Deflated, Stopping } phase = Touching;
    std::chrono::steady_clock::time_point since{};
    std::string answers;
    auto end = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < end) {
        if (p.wait(20ms)) break;
        long kib = rss_shmem_kib(p.pid());
        if (kib < 0) continue;
        const std::string& out = p.result().out;
        auto now = std::chrono::steady_clock::now();
        switch (phase) {
            case Touching:
                if (out.find("touched 128 MiB") != std::string::npos) {
                    peak_before = std::max(peak_before, kib);
                    answers += call({{"request", "balloon"}, {"guest", "vm0"}, {"target", 96 << 20}}) + "\n";
                    phase = Inflating;
                }
                break;
            case Inflating:
                if (out.find("now holding 24576 pages") != std::string::npos) phase = Inflated, since = now;
                break;
            case Inflated:  // a second of samples while the balloon holds 96 MiB
                low = low < 0 ? kib : std::min(low, kib);
                if (now - since > 1s) {
                    answers += call({{"request", "balloon"}, {"guest", "vm0"}, {"target", 0}}) + "\n";
                    phase = Deflating;
                }
                break;
            case Deflating:
                if (out.find("now holding 0 pages") != std::string::npos) phase = Deflated, since = now;
                break;
            case Deflated:  // the guest touched the pages again before saying so
                peak_after = std::max(peak_after, kib);
                if (now - since > 1s) {
                    answers += call({{"request", "poweroff"}, {"guest", "vm0"}}) + "\n";
                    phase = Stopping;
                }
                break;
            case Stopping: break;
        }
    }
    const auto& r = p.finish(20s);
    std::filesystem::remove_all(dir);
    EXPECT_EQ(phase, Stopping) << "control answers:\n" << answers << r.describe();
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_TRUE(r.exited) << r.describe();
    EXPECT_NE(r.out.find("touched 128 MiB"), std::string::npos) << r.describe();
    EXPECT_GE(peak_before, 128 * 1024) << r.describe();
    ASSERT_GE(low, 0) << "never sampled while inflated: " << r.describe();
    EXPECT_LE(low, peak_before - 90 * 1024) << "inflating 96 MiB should free >= 90 MiB; " << r.describe();
    EXPECT_GE(peak_after, low + 90 * 1024) << "deflating should let the guest use the memory again; " << r.describe();
    EXPECT_NE(r.err.find("guest reached the target of 24576 pages"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("inflated 24576 deflated 24576"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("refused page numbers 0"), std::string::npos) << r.describe();
}

TEST_F(VirtioBalloonKvm, StatsArrive) {
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline", "workload=balloon secs=3",
                        "--balloon", "stats=1", "--stats"},
                       40s);
    EXPECT_EXIT_OK(r);
    EXPECT_NE(r.err.find("virtio-balloon: first stats from the guest:"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("total=67108864"), std::string::npos) << r.describe();
    // Requested again every second: more than one update in 3 s.
    EXPECT_EQ(r.err.find("stats updates 0"), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find("stats updates 1,"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("guest stats #"), std::string::npos) << r.describe();
}

TEST_F(VirtioBalloonKvm, TargetAboveRamIsRefused) {
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline", "workload=balloon secs=2",
                        "--balloon", "target-at=0.5:128"},
                       40s);
    EXPECT_EXIT_OK(r);
    EXPECT_NE(r.err.find("is more than the guest's 64 MiB of RAM"), std::string::npos) << r.describe();
}

TEST_F(VirtioBalloonKvm, BalloonAndDiskTogether) {
    // Two devices: windows 0 and 1, distinct GSIs, found by the guest by ID.
    char tmpl[] = "/tmp/vireo-kvm-disk-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    ::close(fd);
    auto r = run_vireo({"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline", "workload=blk-rw sectors=64",
                        "--disk", tmpl, "--balloon"},
                       40s);
    ::unlink(tmpl);
    EXPECT_EXIT_OK(r);
    EXPECT_NE(r.out.find("verified 64 sectors"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace vireo::test
