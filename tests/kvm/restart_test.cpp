// The restart supervisor on this host's /dev/kvm, with test guests:
//  - panic, triple-fault and hang under on-failure are restarted with the
//    policy's back-off, reach `failed` after max_failures, and an
//    administrator's restart brings them back; a guest beside them is
//    untouched (same vCPU thread, one start);
//  - every boot counts itself on the guest's disk and flushes before it
//    crashes: after k boots the disk holds exactly 1..k;
//  - `vireo run` with --restart, the watchdog, hang detection defaults.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "tests/kvm/host_fixture.h"
#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"

namespace vireo::test {
namespace {

constexpr uint64_t kCounterMagic = 0x544e554f43455249ull;  // the test guest's blk-counter

// The boots a blk-counter disk recorded: sector i holds {magic, i}.
struct Counted {
    uint64_t header = 0;              // the last boot (sector 0)
    std::vector<uint64_t> records;    // sectors 1.. with the magic, in order
};
Counted read_counter_disk(const std::string& path) {
    Counted c;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return c;
    uint64_t sector[64];
    for (uint64_t n = 0; n < 256; ++n) {
        if (::pread(fd, sector, sizeof sector, off_t(n * 512)) != ssize_t(sizeof sector)) break;
        if (sector[0] != kCounterMagic) {
            if (n > 0) break;
            continue;
        }
        if (n == 0) c.header = sector[1];
        else c.records.push_back(sector[1]);
    }
    ::close(fd);
    return c;
}

std::vector<uint64_t> one_to(uint64_t k) {
    std::vector<uint64_t> v;
    for (uint64_t i = 1; i <= k; ++i) v.push_back(i);
    return v;
}

class Restart : public HostFixture {
protected:
    std::string disk(const std::string& name) {
        std::string path = dir_ + "/" + name + ".img";
        std::ofstream(path).close();
        std::filesystem::resize_file(path, 1 << 20);
        return path;
    }
    json guest_status(const std::string& name) {
        json list = result({{"request", "list"}});
        for (const auto& g : list["guests"])
            if (g["name"] == name) return g;
        ADD_FAILURE() << "no guest " << name << " in " << list.dump();
        return json();
    }
    // Waits until `pred(status)` or `timeout`; returns the last status.
    template <class Pred>
    json wait_for(const std::string& name, Pred pred, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        json s;
        while (std::chrono::steady_clock::now() < deadline) {
            s = guest_status(name);
            if (pred(s)) return s;
            std::this_thread::sleep_for(100ms);  // not proc_->wait(): a PipeDrainer may be reading
        }
        return s;
    }
};

// A short policy: immediate, 0.3 s, 0.6 s; the 4th failure in a minute fails it.
const json kPolicy = {{"policy", "on-failure"}, {"backoff_initial_s", 0.3}, {"backoff_max_s", 5},
                      {"max_failures", 4},      {"window_s", 60}};

TEST_F(Restart, FaultsAreRestartedWithBackoffUntilFailed) {
    json guests = json::array();
    for (std::string fault : {"panic", "triple-fault", "hang"})
        guests.push_back(guest(fault, "blk-counter:" + fault,
                               {{"disks", {disk(fault)}}, {"restart", kPolicy}, {"hang", {{"min_s", 1}}}, {"cpus", 1}}));
    // The bystander busy-loops (with heartbeats) for the whole test.
    guests.push_back(guest("calm", "cpu:600000"));
    start(guests);
    if (HasFatalFailure()) return;
    PipeDrainer drain(*proc_);
    pid_t calm_tid = vcpu_tid("calm");

    const std::map<std::string, std::string> reason{{"panic", "panic"}, {"triple-fault", "triple-fault"}, {"hang", "hang"}};
    for (const auto& [name, why] : reason) {
        json s = wait_for(name, [](const json& g) { return g["state"] == "failed"; }, 60s);
        ASSERT_EQ(s["state"], "failed") << name << ": " << s.dump();
        // 4 boots: restarted after the 1st, 2nd and 3rd failure, failed at the 4th.
        EXPECT_EQ(s["starts"], 4) << name;
        EXPECT_EQ(s["restarts"], 3) << name;
        const json& r = s["restart"];
        EXPECT_EQ(r["failures_in_window"], 4) << name;
        EXPECT_EQ(r["restarts_by_reason"][why], 3) << name << ": " << r.dump();
        ASSERT_EQ(r["history"].size(), 3u) << r.dump();
        std::vector<int64_t> delays;
        for (const auto& h : r["history"]) {
            delays.push_back(h["delay_ms"]);
            EXPECT_EQ(h["source"], "supervisor");
            EXPECT_NE(h["reason"].get<std::string>().find(why), std::string::npos) << h.dump();
        }
        EXPECT_EQ(delays, (std::vector<int64_t>{0, 300, 600})) << name;
        // The back-off was really waited: restart i came >= its delay after restart i-1.
        for (size_t i = 1; i < r["history"].size(); ++i)
            EXPECT_GE(r["history"][i]["time_ns"].get<int64_t>() - r["history"][i - 1]["time_ns"].get<int64_t>(),
                      delays[i] * 1000000)
                << name;
        EXPECT_TRUE(r["last_restart_ms"].is_number()) << r.dump();
        EXPECT_EQ(s["last_stop"]["exit_status"],
                  why == "panic" ? VIREO_EXIT_GUEST_PANIC : why == "hang" ? VIREO_EXIT_GUEST_HUNG : VIREO_EXIT_TRIPLE_FAULT);
        // Every acknowledged, flushed write survived four crashes.
        Counted c = read_counter_disk(dir_ + "/" + name + ".img");
        EXPECT_EQ(c.header, 4u) << name;
        EXPECT_EQ(c.records, one_to(4)) << name;
    }

    // An administrator brings one back: its back-off starts over, so it
    // crashes its way to `failed` again -- four more boots on the disk.
    json r = call({{"request", "restart"}, {"guest", "panic"}, {"reason", "fixed it"}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    json s = wait_for("panic", [](const json& g) { return g["state"] == "failed" && g["starts"] == 8; }, 60s);
    EXPECT_EQ(s["starts"], 8) << s.dump();
    Counted c = read_counter_disk(dir_ + "/panic.img");
    EXPECT_EQ(c.records, one_to(8));
    EXPECT_EQ(s["restart"]["history"][3]["source"], "admin");

    // The bystander never noticed.
    json calm = guest_status("calm");
    EXPECT_EQ(calm["state"], "running");
    EXPECT_EQ(calm["starts"], 1);
    EXPECT_EQ(vcpu_tid("calm"), calm_tid);

    // Metrics say the same.
    ASSERT_TRUE(info_["metrics"].is_string()) << info_.dump();
    std::string metrics = slurp_cmd("curl -sS --max-time 10 " + info_["metrics"].get<std::string>());
    EXPECT_NE(metrics.find("vireo_guest_restarts_by_reason_total{guest=\"hang\",reason=\"hang\"} 3"), std::string::npos)
        << metrics.substr(0, 4000);
    EXPECT_NE(metrics.find("vireo_guest_state{guest=\"panic\",state=\"failed\"} 1"), std::string::npos);
}

TEST_F(Restart, BackoffIsVisibleAndPoweroffCancelsIt) {
    json policy = kPolicy;
    policy["backoff_initial_s"] = 30;  // the 2nd restart waits 30 s: long enough to look at
    policy["backoff_max_s"] = 60;
    start(json::array({guest("p", "blk-counter:panic", {{"disks", {disk("p")}}, {"restart", policy}})}));
    if (HasFatalFailure()) return;
    PipeDrainer drain(*proc_);
    json s = wait_for("p", [](const json& g) { return g["state"] == "backoff"; }, 30s);
    ASSERT_EQ(s["state"], "backoff") << s.dump();
    EXPECT_EQ(s["starts"], 2);
    EXPECT_GT(s["restart"]["restart_in_s"].get<double>(), 20.0);
    EXPECT_EQ(s["restart"]["failures_in_window"], 2);
    json r = call({{"request", "poweroff"}, {"guest", "p"}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    s = guest_status("p");
    EXPECT_EQ(s["state"], "stopped");
    EXPECT_TRUE(s["restart"]["restart_in_s"].is_null());
}

TEST_F(Restart, CleanPoweroffIsNotRestartedOnFailure) {
    start(json::array({guest("ok", "hello", {{"restart", kPolicy}})}));
    if (HasFatalFailure()) return;
    json s = wait_for("ok", [](const json& g) { return g["state"] == "stopped"; }, 20s);
    EXPECT_EQ(s["state"], "stopped");
    proc_->wait(1s);
    EXPECT_EQ(guest_status("ok")["starts"], 1);
}

class RestartRun : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& why : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()), missing_file_reason(testguest_binary())})
            if (!why.empty()) GTEST_SKIP() << why;
        char tmpl[] = "/tmp/vireo-restart-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    void TearDown() override {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }
    std::vector<std::string> args(const std::string& workload, std::vector<std::string> extra = {}) {
        std::vector<std::string> a{"run", "--kernel", testguest_binary(), "--mem", "32M", "--probes", "off",
                                   "--control", "none", "--cmdline", "workload=" + workload};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string dir_;
};

TEST_F(RestartRun, RunRestartsUntilFailedThenExitsWithTheFault) {
    std::string img = dir_ + "/c.img";
    std::ofstream(img).close();
    std::filesystem::resize_file(img, 1 << 20);
    auto r = run_vireo(args("blk-counter:exit:9", {"--disk", img, "--restart", "on-failure,backoff_initial_s=0.1,max_failures=3"}), 30s);
    ASSERT_TRUE(r.exited) << r.describe();
    EXPECT_EQ(r.status, 9) << r.describe();  // a non-zero test exit is a failure
    EXPECT_NE(r.err.find("failed: 3 failures"), std::string::npos) << r.describe();
    Counted c = read_counter_disk(img);
    EXPECT_EQ(c.records, one_to(3));
}

TEST_F(RestartRun, WatchdogStopsAGuestThatStopsFeedingIt) {
    auto r = run_vireo(args("watchdog:2", {"--watchdog"}), 30s);
    ASSERT_TRUE(r.exited) << r.describe();
    EXPECT_EQ(r.status, VIREO_EXIT_GUEST_HUNG) << r.describe();
    EXPECT_NE(r.err.find("watchdog (ib700) expired"), std::string::npos) << r.describe();
    // Fed twice at 0.5 s, then 2 s of silence: ~3 s in all, well before any hang limit.
    EXPECT_LT(r.elapsed, 10s);
    // Disarmed: runs to its end.
    auto ok = run_vireo(args("watchdog:0", {"--watchdog"}), 30s);
    EXPECT_EQ(ok.status, 0) << ok.describe();
    // A host timeout overrides the guest's 2 s.
    auto quick = run_vireo(args("watchdog:1", {"--watchdog", "timeout_s=0.5"}), 30s);
    EXPECT_EQ(quick.status, VIREO_EXIT_GUEST_HUNG) << quick.describe();
    EXPECT_NE(quick.err.find("timeout 0.5 s"), std::string::npos) << quick.describe();
}

TEST_F(RestartRun, HangIsDetectedWithDefaultsAndBusyGuestsAreNot) {
    auto r = run_vireo(args("hang"), 60s);
    ASSERT_TRUE(r.exited) << r.describe();
    EXPECT_EQ(r.status, VIREO_EXIT_GUEST_HUNG) << r.describe();
    EXPECT_NE(r.err.find("no progress for 5."), std::string::npos) << r.describe();
    // 8 s of busy work with heartbeats, and 6 s of idling: neither is a hang.
    auto busy = run_vireo(args("cpu:8000"), 60s);
    EXPECT_EQ(busy.status, 0) << busy.describe();
    auto off = run_vireo(args("hang", {"--hang", "off"}), 8s);
    EXPECT_TRUE(off.timed_out) << "with --hang off only the operator stops a hung guest: " << off.describe();
}

}  // namespace
}  // namespace vireo::test
