#include "vmm/supervisor/restart_backoff.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using Clock = RestartBackoff::Clock;
using Kind = RestartDecision::Kind;

RestartPolicy policy(RestartMode mode) {
    RestartPolicy p;
    p.mode = mode;
    return p;  // the defaults: 10 s doubling to 300 s, reset after 10 min, 5 failures in 10 min
}

TEST(RestartBackoff, CrashLoopBackOffSchedule) {
    Clock::time_point t;
    // First restart immediate, then 10 s doubling to the 300 s cap (a big
    // max_failures keeps the failed state out of the way).
    RestartPolicy p = policy(RestartMode::OnFailure);
    p.max_failures = 1000;
    RestartBackoff big(p);
    std::vector<int64_t> delays;
    t = Clock::time_point{} + 1h;
    for (int i = 0; i < 9; ++i) {
        big.on_start(t);
        t += 5s;
        RestartDecision d = big.on_stop(StopKind::Failure, t);
        ASSERT_EQ(d.kind, Kind::Restart);
        delays.push_back(std::chrono::duration_cast<std::chrono::seconds>(d.delay).count());
        t += d.delay;
    }
    EXPECT_EQ(delays, (std::vector<int64_t>{0, 10, 20, 40, 80, 160, 300, 300, 300}));
}

TEST(RestartBackoff, ResetsAfterRunningHealthyLongEnough) {
    RestartPolicy p = policy(RestartMode::OnFailure);
    p.max_failures = 100;
    RestartBackoff b(p);
    Clock::time_point t = Clock::time_point{} + 1h;
    for (int i = 0; i < 3; ++i) {
        b.on_start(t);
        t += 1s;
        t += b.on_stop(StopKind::Failure, t).delay;
    }
    EXPECT_EQ(b.next_delay(), 40s);  // 0, 10, 20 used
    b.on_start(t);
    t += 9min + 59s;  // not quite 10 minutes
    EXPECT_EQ(b.on_stop(StopKind::Failure, t).delay, 40s);
    b.on_start(t += 40s);
    t += 10min;  // healthy for reset_after: starts over
    EXPECT_EQ(b.on_stop(StopKind::Failure, t).delay, 0s);
    b.on_start(t);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t + 1s).delay, 10s);
}

TEST(RestartBackoff, TooManyFailuresInTheWindowFail) {
    RestartPolicy p = policy(RestartMode::OnFailure);
    p.max_failures = 3;
    p.failure_window = 60s;
    p.backoff_initial = 1s;
    RestartBackoff b(p);
    Clock::time_point t = Clock::time_point{} + 1h;
    b.on_start(t);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 1s).kind, Kind::Restart);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 2s).kind, Kind::Restart);
    EXPECT_EQ(b.failures_in_window(t), 2u);
    RestartDecision d = b.on_stop(StopKind::Failure, t += 3s);
    EXPECT_EQ(d.kind, Kind::Fail);
    EXPECT_NE(d.why.find("3 failures"), std::string::npos) << d.why;
    // An administrator's restart forgets them.
    b.reset();
    EXPECT_EQ(b.failures_in_window(t), 0u);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 1s).kind, Kind::Restart);
}

TEST(RestartBackoff, OldFailuresLeaveTheWindow) {
    RestartPolicy p = policy(RestartMode::OnFailure);
    p.max_failures = 2;
    p.failure_window = 60s;
    RestartBackoff b(p);
    Clock::time_point t = Clock::time_point{} + 1h;
    EXPECT_EQ(b.on_stop(StopKind::Failure, t).kind, Kind::Restart);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 61s).kind, Kind::Restart);  // the first one no longer counts
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 1s).kind, Kind::Fail);
}

TEST(RestartBackoff, WhatEachModeRestarts) {
    struct Case {
        RestartMode mode;
        StopKind kind;
        Kind want;
    } cases[] = {
        {RestartMode::Never, StopKind::Failure, Kind::Stay},     {RestartMode::Never, StopKind::Reboot, Kind::Stay},
        {RestartMode::OnFailure, StopKind::Failure, Kind::Restart}, {RestartMode::OnFailure, StopKind::Reboot, Kind::Restart},
        {RestartMode::OnFailure, StopKind::Clean, Kind::Stay},   {RestartMode::OnFailure, StopKind::Operator, Kind::Stay},
        {RestartMode::Always, StopKind::Clean, Kind::Restart},   {RestartMode::Always, StopKind::Reboot, Kind::Restart},
        {RestartMode::Always, StopKind::Operator, Kind::Stay},
    };
    for (const auto& c : cases) {
        RestartBackoff b(policy(c.mode));
        EXPECT_EQ(b.on_stop(c.kind, Clock::time_point{} + 1h).kind, c.want)
            << to_string(c.mode) << " after " << to_string(c.kind);
    }
}

TEST(RestartBackoff, CleanStopsDoNotCountAsFailures) {
    RestartPolicy p = policy(RestartMode::Always);
    p.max_failures = 1;
    RestartBackoff b(p);
    Clock::time_point t = Clock::time_point{} + 1h;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(b.on_stop(StopKind::Clean, t += 1s).kind, Kind::Restart);
    EXPECT_EQ(b.failures_in_window(t), 0u);
    EXPECT_EQ(b.on_stop(StopKind::Failure, t += 1s).kind, Kind::Fail);
}

TEST(RestartBackoff, DelayNeverOverflowsTheCap) {
    RestartPolicy p = policy(RestartMode::Always);
    p.backoff_initial = 1ms;
    p.backoff_max = 2s;
    RestartBackoff b(p);
    Clock::time_point t = Clock::time_point{} + 1h;
    for (int i = 0; i < 200; ++i) b.on_stop(StopKind::Clean, t += 1ms);
    EXPECT_EQ(b.next_delay(), 2s);
}

}  // namespace
}  // namespace vireo
