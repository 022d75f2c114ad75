// Trace files: round trip, and one clear error line for bad input.
#include <gtest/gtest.h>

#include <sstream>

#include "agent/evaluation.h"
#include "agent/trace.h"

namespace vireo::agent {
namespace {

Snapshot sample() {
    Snapshot s;
    s.timestamp_ns = 5'000'000'000;
    s.mode = ControllerMode::Advise;
    s.limits.balloon_step_percent = 7;
    s.host_cpus = {{0, 100}, {3, 200}};
    s.host_mem_total_bytes = 1ull << 34;
    s.host_mem_available_bytes = 1ull << 33;
    s.pressure = {1.5, 0.25, 3.0};
    GuestSample g;
    g.name = "web";
    g.ram_bytes = 1ull << 30;
    g.configured_class = GuestClass::LatencySensitive;
    g.control = {ControllerMode::Auto, true, false};
    BalloonSample b;
    b.target_bytes = 1 << 20;
    b.actual_bytes = 1 << 19;
    b.deflate_on_oom_events = 2;
    b.stats.available_memory = 123456;
    b.stats.major_faults = 7;
    g.balloon = b;
    g.vcpus.push_back({0, 4242, std::vector<unsigned>{3}, 10, 20, 30, 40, 50});
    g.vcpus.push_back({1, 4243, std::nullopt, 11, 21, 31, 41, 51});
    s.guests.push_back(g);
    GuestSample h;
    h.name = "batch";
    h.ram_bytes = 1ull << 29;
    s.guests.push_back(h);
    return s;
}

TEST(AgentTrace, RoundTrip) {
    Snapshot a = sample(), b = sample();
    b.timestamp_ns += 1'000'000'000;
    std::stringstream io;
    write_trace(io, {a, b});
    auto back = read_trace(io);
    ASSERT_TRUE(back) << back.error();
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[0], a);
    EXPECT_EQ((*back)[1], b);
}

TEST(AgentTrace, SimulatorTraceReplaysAsAScenario) {
    auto s = make_scenario("steady", 1, 60);
    ASSERT_TRUE(s);
    std::vector<Snapshot> record;
    simulate(*s, kLearned, kLearned, {}, &record);
    std::stringstream io;
    write_trace(io, record);
    auto back = read_trace(io);
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(*back, record);
    auto replayed = scenario_from_trace(*back);
    ASSERT_TRUE(replayed) << replayed.error();
    EXPECT_EQ(replayed->guests.size(), s->guests.size());
    EXPECT_EQ(replayed->ticks, record.size() - 1);
    // Demand measured from the counters matches what the scenario asked for
    // (tick 10: no contention to speak of for the idle guest).
    EXPECT_NEAR(replayed->guests[6].vcpus[0].demand[10], s->guests[6].vcpus[0].demand[10], 0.02);
}

std::string error_of(const std::string& text) {
    std::istringstream in(text);
    auto r = read_trace(in);
    return r ? std::string("(accepted)") : r.error();
}

TEST(AgentTrace, MalformedInputGetsOneLineWithItsLineNumber) {
    std::string header = trace_header() + "\n";
    std::string good = to_trace_line(sample());
    EXPECT_EQ(error_of(""), "empty trace: no header line");
    EXPECT_NE(error_of("{\"x\":1}\n").find("line 1: not a vireo trace"), std::string::npos);
    EXPECT_NE(error_of("{\"vireo_trace\":2}\n").find("version 2"), std::string::npos);
    EXPECT_NE(error_of(header + "\n{nope\n").find("line 3: not JSON"), std::string::npos);
    auto with = [&](const std::string& from, const std::string& to) {
        std::string line = good;
        auto at = line.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) line.replace(at, from.size(), to);
        return error_of(header + line + "\n");
    };
    EXPECT_EQ(with("\"t_ns\":", "\"time\":"), "line 2: unknown key 'time' (known: t_ns, mode, limits, host, guests)");
    EXPECT_EQ(with("\"mode\":\"advise\"", "\"mode\":\"on\""), "line 2: 'mode' must be off, advise or auto, not 'on'");
    // A value quoted in the message cannot break it over lines (found by fuzz_trace).
    EXPECT_EQ(with("\"mode\":\"advise\"", "\"mode\":\"a\\nb\""), "line 2: 'mode' must be off, advise or auto, not 'a\\nb'");
    EXPECT_EQ(with("\"balloon_step_percent\":7", "\"balloon_step_percent\":700"),
              "line 2: limits: 'balloon_step_percent' must be at most 100");
    EXPECT_EQ(with("\"pin\":[3]", "\"pin\":[3,3]"), "line 2: guests[0]: guest 'web': vcpus[0]: 'pin' must be sorted and without repeats");
    EXPECT_EQ(with("\"runq_waits\":30", "\"runq_waits\":-1"), "line 2: guests[0]: guest 'web': vcpus[0]: 'runq_waits' must not be negative");
    EXPECT_EQ(with("\"major_faults\":7", "\"major_fault\":7"),
              "line 2: guests[0]: guest 'web': balloon: stats: unknown key 'major_fault' (known: swap_in, swap_out, "
              "major_faults, minor_faults, free_memory, total_memory, available_memory, disk_caches, hugetlb_allocations, "
              "hugetlb_failures)");
    EXPECT_EQ(with("\"class\":\"latency-sensitive\"", "\"class\":\"fast\""),
              "line 2: guests[0]: guest 'web': 'class' must be latency-sensitive, batch or unknown, not 'fast'");
    EXPECT_EQ(with("\"memory_some_avg10\":1.5", "\"memory_some_avg10\":150"), "line 2: host: psi: 'memory_some_avg10' must be between 0 and 100");
    // Time must move forward.
    EXPECT_EQ(error_of(header + good + "\n" + good + "\n"), "line 3: 't_ns' must grow from one snapshot to the next");
    for (const std::string& e : {with("\"t_ns\":", "\"time\":"), with("\"pin\":[3]", "\"pin\":\"3\"")})
        EXPECT_EQ(e.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vireo::agent
