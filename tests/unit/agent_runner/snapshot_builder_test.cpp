// The live controller's snapshot (vmm/agent_runner/snapshot_builder.h): the
// /proc parsers, a completed snapshot of this very process's threads, and
// the host config keys of the controller thread.
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/trace.h"
#include "vmm/agent_runner/snapshot_builder.h"
#include "vmm/guest_config.h"

namespace vireo::agent_runner {
namespace {

TEST(ControllerSnapshot, ParsesSchedstat) {
    auto s = parse_schedstat("123456 7890 42\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->cpu_ns, 123456u);
    EXPECT_EQ(s->wait_ns, 7890u);
    EXPECT_EQ(s->slices, 42u);
    EXPECT_FALSE(parse_schedstat(""));
    EXPECT_FALSE(parse_schedstat("1 2\n"));
    EXPECT_FALSE(parse_schedstat("1 x 3\n"));
}

TEST(ControllerSnapshot, ParsesProcStat) {
    // user nice system idle iowait irq softirq steal guest guest_nice
    auto busy = parse_proc_stat("cpu  10 0 10 100 5 0 0 0 7 0\n"
                                "cpu0 4 1 2 50 3 1 1 1 5 0\n"
                                "cpu1 6 0 8 50 2 0 0 0 2 0\n"
                                "intr 1 2 3\n",
                                100);
    ASSERT_EQ(busy.size(), 2u);
    // cpu0: 4+1+2+1+1+1 = 10 ticks (idle, iowait and guest not counted) = 100 ms.
    EXPECT_EQ(busy[0], 100'000'000u);
    EXPECT_EQ(busy[1], 140'000'000u);
    EXPECT_TRUE(parse_proc_stat("cpu0 1 2 3 4\n", 0).empty());
}

TEST(ControllerSnapshot, ParsesPsiAndMeminfo) {
    const char* psi = "some avg10=12.50 avg60=3.00 avg300=1.00 total=100\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=5\n";
    EXPECT_DOUBLE_EQ(*parse_psi_avg10(psi, "some"), 12.5);
    EXPECT_DOUBLE_EQ(*parse_psi_avg10(psi, "full"), 0.25);
    EXPECT_FALSE(parse_psi_avg10("some avg60=1.0\n", "some"));
    EXPECT_FALSE(parse_psi_avg10("", "full"));
    const char* mem = "MemTotal:       24684096 kB\nMemFree:  100 kB\nMemAvailable:   23800000 kB\n";
    EXPECT_EQ(*parse_meminfo(mem, "MemTotal"), 24684096ull * 1024);
    EXPECT_EQ(*parse_meminfo(mem, "MemAvailable"), 23800000ull * 1024);
    EXPECT_FALSE(parse_meminfo(mem, "Mem"));
    EXPECT_FALSE(parse_meminfo(mem, "SwapTotal"));
}

// A thread that sleeps most of the time reads as mostly halted, one that
// spins as running: the split the pinning policy's class inference needs.
TEST(ControllerSnapshot, CompletesThreadTimesFromSchedstat) {
    std::atomic<pid_t> sleeper{0}, spinner{0};
    std::atomic<bool> stop{false};
    std::thread a([&] {
        sleeper = pid_t(::syscall(SYS_gettid));
        while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
    std::thread b([&] {
        spinner = pid_t(::syscall(SYS_gettid));
        uint64_t x = 0;
        while (!stop) {
            ++x;
            __asm__ volatile("" : "+r"(x));
        }
    });
    while (!sleeper || !spinner) std::this_thread::yield();

    auto part_at = [&](uint64_t t) {
        HostPart part;
        part.snapshot.timestamp_ns = t;
        part.allowed_cpus = {0};
        part.any_on = true;
        agent::GuestSample g;
        g.name = "g";
        g.vcpus.push_back({.index = 0, .tid = sleeper.load()});
        g.vcpus.push_back({.index = 1, .tid = spinner.load()});
        part.snapshot.guests.push_back(g);
        part.bpf_runq.push_back({false, false});
        return part;
    };
    auto mono = [] { return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count()); };
    SnapshotBuilder builder;
    agent::Snapshot first = builder.complete(part_at(mono()));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    agent::Snapshot second = builder.complete(part_at(mono()));
    stop = true;
    a.join();
    b.join();

    ASSERT_EQ(second.guests.size(), 1u);
    const auto& s = second.guests[0].vcpus[0];
    const auto& p = second.guests[0].vcpus[1];
    EXPECT_EQ(first.guests[0].vcpus[0].in_kvm_run_ns, 0u);  // the first sight is the baseline
    EXPECT_GT(s.in_kvm_run_ns, 250'000'000u);
    EXPECT_GT(double(s.halt_wait_ns), 0.8 * double(s.in_kvm_run_ns)) << "a sleeping thread is halted";
    EXPECT_LT(double(p.halt_wait_ns), 0.5 * double(p.in_kvm_run_ns)) << "a spinning thread is not";
    EXPECT_FALSE(second.host_cpus.empty());
    EXPECT_GT(second.host_mem_total_bytes, 0u);
    // What the builder makes is a valid trace line.
    EXPECT_TRUE(agent::parse_trace_line(agent::to_trace_line(second)));
}

TEST(ControllerSnapshot, HostConfigKeys) {
    auto c = parse_host_config(R"({"controller": {"mode": "auto", "tick_s": 0.5, "balloon_warmup_s": 30}, "guests": [{"name": "a", "kernel": "k"}]})", "h.json");
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->controller_tick, std::chrono::milliseconds(500));
    EXPECT_EQ(c->controller_balloon_warmup_s, 30.0);
    auto d = parse_host_config(R"({"guests": [{"name": "a", "kernel": "k"}]})", "h.json");
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ(d->controller_tick, std::chrono::milliseconds(1000));
    EXPECT_FALSE(d->controller_balloon_warmup_s);
    for (const char* bad : {R"({"controller": {"tick_s": 0}, "guests": [{"name": "a", "kernel": "k"}]})", R"({"controller": {"tick_s": "1"}, "guests": [{"name": "a", "kernel": "k"}]})",
                            R"({"controller": {"balloon_warmup_s": -1}, "guests": [{"name": "a", "kernel": "k"}]})"}) {
        auto e = parse_host_config(bad, "h.json");
        ASSERT_FALSE(e) << bad;
        EXPECT_NE(e.error().find("controller."), std::string::npos) << e.error();
    }
}

}  // namespace
}  // namespace vireo::agent_runner
