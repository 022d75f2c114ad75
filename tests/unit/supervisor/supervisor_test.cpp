// The restart supervisor with a fake guest, a fake clock and fake timers:
// detection (watchdog, hang), the decision (restart now, back off, fail,
// stay), the pending restart's timer and its cancellation, and what a
// restart records. No KVM: these run on every host.
#include "vmm/supervisor/supervisor.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using Clock = Supervisor::Clock;

class FakeGuest final : public SupervisedGuest {
public:
    explicit FakeGuest(std::string name) : name_(std::move(name)) {}
    const std::string& name() const override { return name_; }
    GuestState state() const override { return state_; }
    void set_state(GuestState to, const std::string& why) override {
        state_ = to;
        whys.push_back(why);
    }
    uint64_t starts() const override { return starts_; }
    const std::optional<StopRequest>& last_stop() const override { return last_stop_; }
    bool stop_requested() const override { return stop.has_value(); }
    void request_stop(StopRequest r) override {
        if (!stop) stop = std::move(r);
    }
    bool can_detect_hangs() const override { return hangs_detectable; }
    HealthSample health() const override { return sample; }
    std::optional<std::string> watchdog_expired(uint64_t) const override { return watchdog; }
    void set_restart_detected_at(Clock::time_point t) override { detected_at = t; }
    std::optional<std::chrono::nanoseconds> restart_latency() const override { return std::nullopt; }

    // The guest ran and stopped with `r` (what the host does around a run).
    void run() {
        ++starts_;
        state_ = GuestState::Running;
        stop.reset();
    }
    StopRequest stopped(StopRequest r) {
        last_stop_ = r;
        state_ = GuestState::Stopped;
        return r;
    }

    std::optional<StopRequest> stop;  // what request_stop() was asked
    bool hangs_detectable = true;
    HealthSample sample;
    std::optional<std::string> watchdog;
    std::optional<Clock::time_point> detected_at;
    std::vector<std::string> whys;

private:
    std::string name_;
    GuestState state_ = GuestState::Stopped;
    uint64_t starts_ = 0;
    std::optional<StopRequest> last_stop_;
};

// The host around the supervisor: a clock the test moves, timers the test
// fires, the event bus, and restarts that go back through restart() as the
// actuator would send them.
class SupervisorTest : public ::testing::Test {
protected:
    SupervisorTest()
        : sup(bus, Supervisor::Hooks{.now = [this] { return now; },
                                     .realtime_ns = [] { return int64_t(1700000000) * 1000000000; },
                                     .after = [this](std::chrono::milliseconds d, std::function<void()> fn) {
                                         timers[next_timer] = {now + d, std::move(fn)};
                                         return next_timer++;
                                     },
                                     .cancel = [this](Supervisor::TimerId id) {
                                         cancelled.push_back(id);
                                         timers.erase(id);
                                     },
                                     .restart = [this](SupervisedGuest& g, const std::string& cause) {
                                         causes.push_back(cause);
                                         (void)sup.restart(g, Origin{ActionSource::Supervisor, "restart-policy", cause},
                                                           [&](const std::string&) -> std::expected<void, Error> {
                                                               static_cast<FakeGuest&>(g).run();
                                                               sup.started(g);
                                                               return {};
                                                           });
                                     }}) {
        bus.subscribe([this](const Event& e) { events.push_back(e.type + " " + e.data.dump()); });
    }

    void add(FakeGuest& g, RestartPolicy p, HangSettings h = {}) {
        sup.add(g, p, h);
        g.run();
        sup.started(g);
    }
    // Fires every timer due by `now`, in time order.
    void advance(std::chrono::milliseconds d) {
        now += d;
        for (;;) {
            auto due = timers.end();
            for (auto it = timers.begin(); it != timers.end(); ++it)
                if (it->second.first <= now && (due == timers.end() || it->second.first < due->second.first)) due = it;
            if (due == timers.end()) return;
            auto fn = std::move(due->second.second);
            timers.erase(due);
            fn();
        }
    }
    bool has_event(const std::string& prefix) const {
        for (const auto& e : events)
            if (e.rfind(prefix, 0) == 0) return true;
        return false;
    }

    Clock::time_point now = Clock::time_point{} + 1h;
    EventBus bus;
    std::map<Supervisor::TimerId, std::pair<Clock::time_point, std::function<void()>>> timers;
    Supervisor::TimerId next_timer = 1;
    std::vector<Supervisor::TimerId> cancelled;
    std::vector<std::string> causes;
    std::vector<std::string> events;
    Supervisor sup;
};

RestartPolicy on_failure(unsigned max_failures = 5) {
    RestartPolicy p;
    p.mode = RestartMode::OnFailure;
    p.backoff_initial = 1s;
    p.backoff_max = 4s;
    p.max_failures = max_failures;
    return p;
}

TEST_F(SupervisorTest, FirstFaultRestartsAtOnceFromTheDetectionTime) {
    FakeGuest g("web");
    add(g, on_failure());
    now += 30s;
    auto detected = now - 5ms;
    sup.stopped(g, g.stopped({StopReason::Panic, 0, "pvpanic: guest panicked", detected}));
    ASSERT_EQ(causes, (std::vector<std::string>{"panic: pvpanic: guest panicked"}));
    EXPECT_EQ(g.starts(), 2u);
    EXPECT_EQ(g.state(), GuestState::Running);
    EXPECT_EQ(g.detected_at, detected);  // the latency starts at the fault, not at the decision
    EXPECT_TRUE(has_event("restart-scheduled {\"attempt\":1,\"delay_ms\":0"));
    const Supervision* s = sup.find("web");
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->history.size(), 1u);
    EXPECT_EQ(s->history[0].source, "supervisor");
    EXPECT_EQ(s->history[0].delay_ms, 0);
    EXPECT_EQ(s->restarts_by_reason.at("panic"), 1u);
    EXPECT_TRUE(timers.empty());
}

TEST_F(SupervisorTest, RepeatedFaultsBackOffThenFail) {
    FakeGuest g("web");
    add(g, on_failure(/*max_failures=*/3));
    const Supervision* s = sup.find("web");
    sup.stopped(g, g.stopped({StopReason::TripleFault, 0, "rip=0"}));  // 1: immediate
    EXPECT_EQ(g.starts(), 2u);
    advance(100ms);
    sup.stopped(g, g.stopped({StopReason::TripleFault, 0, "rip=0"}));  // 2: after the back-off
    EXPECT_EQ(g.state(), GuestState::Backoff);
    ASSERT_TRUE(s->restart_due.has_value());
    EXPECT_EQ(*s->restart_due - now, 1s);
    advance(999ms);
    EXPECT_EQ(g.starts(), 2u) << "restarted before its back-off";
    advance(1ms);
    EXPECT_EQ(g.starts(), 3u);
    EXPECT_FALSE(s->restart_due.has_value());
    EXPECT_EQ(s->history.back().delay_ms, 1000);
    EXPECT_EQ(s->restarts_by_reason.at("triple-fault"), 2u);
    advance(100ms);
    sup.stopped(g, g.stopped({StopReason::TripleFault, 0, "rip=0"}));  // 3: max_failures in the window
    EXPECT_EQ(g.state(), GuestState::Failed);
    EXPECT_EQ(g.starts(), 3u);
    EXPECT_TRUE(has_event("failed {\"failures\":3"));
    EXPECT_TRUE(timers.empty());
}

TEST_F(SupervisorTest, OperatorStopsAndCleanStopsStay) {
    FakeGuest g("web");
    add(g, on_failure());
    sup.stopped(g, g.stopped({StopReason::Operator, 0, "SIGTERM"}));
    EXPECT_EQ(g.state(), GuestState::Stopped);
    g.run();
    sup.started(g);
    sup.stopped(g, g.stopped({StopReason::TestExit, 0, ""}));  // exit 0 is clean: on-failure stays
    EXPECT_EQ(g.state(), GuestState::Stopped);
    EXPECT_TRUE(causes.empty());
    EXPECT_TRUE(events.empty());

    FakeGuest never("batch");
    add(never, RestartPolicy{});
    sup.stopped(never, never.stopped({StopReason::Panic, 0, ""}));
    EXPECT_EQ(never.state(), GuestState::Stopped);
    EXPECT_TRUE(causes.empty());
}

TEST_F(SupervisorTest, CancellingAPendingRestartStopsItsTimer) {
    FakeGuest g("web");
    add(g, on_failure());
    sup.stopped(g, g.stopped({StopReason::Hang, 0, "quiet"}));
    sup.stopped(g, g.stopped({StopReason::Hang, 0, "quiet"}));
    ASSERT_EQ(g.state(), GuestState::Backoff);
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_TRUE(sup.cancel_restart(g));
    EXPECT_TRUE(timers.empty());
    EXPECT_EQ(cancelled.size(), 1u);
    EXPECT_FALSE(sup.find("web")->restart_due.has_value());
    EXPECT_FALSE(sup.cancel_restart(g));
    advance(10s);
    EXPECT_EQ(g.starts(), 2u);
}

TEST_F(SupervisorTest, AnAdministratorsRestartStartsTheBackOffOverAndIsRecorded) {
    FakeGuest g("web");
    add(g, on_failure(/*max_failures=*/2));
    sup.stopped(g, g.stopped({StopReason::Panic, 0, ""}));
    sup.stopped(g, g.stopped({StopReason::Panic, 0, ""}));
    ASSERT_EQ(g.state(), GuestState::Failed);
    const Supervision* s = sup.find("web");
    EXPECT_EQ(s->backoff.failures_in_window(now), 2u);
    std::string why;
    auto r = sup.restart(g, Origin{ActionSource::Admin, "uid 0", "bring it back"}, [&](const std::string& w) -> std::expected<void, Error> {
        why = w;
        g.run();
        sup.started(g);
        return {};
    });
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(why, "restart by admin: bring it back");
    EXPECT_EQ(g.detected_at, now);
    EXPECT_EQ(s->backoff.failures_in_window(now), 0u);
    EXPECT_EQ(s->backoff.consecutive_restarts(), 0u);
    EXPECT_EQ(s->history.back().source, "admin");
    EXPECT_EQ(s->history.back().reason, "bring it back");
    EXPECT_EQ(s->restarts_by_reason.at("admin"), 1u);
    // The next fault restarts at once again.
    sup.stopped(g, g.stopped({StopReason::Panic, 0, ""}));
    EXPECT_EQ(g.state(), GuestState::Running);
}

TEST_F(SupervisorTest, AFailedRestartRecordsNothing) {
    FakeGuest g("web");
    add(g, on_failure());
    auto r = sup.restart(g, Origin{ActionSource::Admin, "", ""}, [](const std::string&) -> std::expected<void, Error> {
        return std::unexpected(Error{ErrorCode::Internal, "kernel unreadable"});
    });
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message, "kernel unreadable");
    EXPECT_TRUE(sup.find("web")->history.empty());
    EXPECT_TRUE(sup.find("web")->restarts_by_reason.empty());
}

TEST_F(SupervisorTest, TheHistoryKeepsTheLastRestarts) {
    FakeGuest g("web");
    add(g, on_failure());
    for (size_t i = 0; i < Supervision::kHistory + 5; ++i)
        (void)sup.restart(g, Origin{ActionSource::Admin, "", "r" + std::to_string(i)},
                          [](const std::string&) -> std::expected<void, Error> { return {}; });
    const auto& h = sup.find("web")->history;
    ASSERT_EQ(h.size(), Supervision::kHistory);
    EXPECT_EQ(h.front().reason, "r5");
    EXPECT_EQ(h.back().reason, "r" + std::to_string(Supervision::kHistory + 4));
    EXPECT_EQ(sup.find("web")->restarts_by_reason.at("admin"), Supervision::kHistory + 5);
}

TEST_F(SupervisorTest, AnExpiredWatchdogStopsTheGuest) {
    FakeGuest g("web");
    add(g, on_failure());
    sup.check_health();
    EXPECT_FALSE(g.stop);
    g.watchdog = "not fed for 30 s";
    sup.check_health();
    ASSERT_TRUE(g.stop);
    EXPECT_EQ(g.stop->reason, StopReason::Watchdog);
    EXPECT_EQ(g.stop->detail, "not fed for 30 s");
}

TEST_F(SupervisorTest, ABusyGuestWithoutProgressIsStoppedAsHung) {
    HangSettings h;
    h.min = 1s;
    FakeGuest g("web");
    add(g, on_failure(), h);
    g.sample = {.progress = 7, .busy_in_guest = true};
    sup.check_health();
    advance(900ms);
    sup.check_health();
    EXPECT_FALSE(g.stop);
    advance(200ms);
    sup.check_health();
    ASSERT_TRUE(g.stop);
    EXPECT_EQ(g.stop->reason, StopReason::Hang);
    EXPECT_NE(g.stop->detail.find("no progress for 1.1 s"), std::string::npos) << g.stop->detail;
}

TEST_F(SupervisorTest, NoHangWhereItCannotBeToldOrIsNotAsked) {
    HangSettings h;
    h.min = 1s;
    FakeGuest blind("blind"), off("off"), paused("paused");
    blind.hangs_detectable = false;  // a KVM without binary stats
    h.enabled = true;
    add(blind, on_failure(), h);
    HangSettings disabled = h;
    disabled.enabled = false;
    add(off, on_failure(), disabled);
    add(paused, on_failure(), h);
    paused.set_state(GuestState::Paused, "paused");
    for (FakeGuest* g : {&blind, &off, &paused}) g->sample = {.progress = 1, .busy_in_guest = true};
    for (int i = 0; i < 20; ++i) {
        sup.check_health();
        advance(250ms);
    }
    EXPECT_FALSE(blind.stop);
    EXPECT_FALSE(off.stop);
    EXPECT_FALSE(paused.stop);
}

TEST_F(SupervisorTest, ResumingStartsTheHangClockOver) {
    HangSettings h;
    h.min = 1s;
    FakeGuest g("web");
    add(g, on_failure(), h);
    g.sample = {.progress = 3, .busy_in_guest = true};
    sup.check_health();
    g.set_state(GuestState::Paused, "paused");
    advance(10s);  // a long pause is not a hang
    g.set_state(GuestState::Running, "resumed");
    sup.resumed(g);
    sup.check_health();
    advance(500ms);
    sup.check_health();
    EXPECT_FALSE(g.stop);
}

TEST_F(SupervisorTest, HealthChecksRunEveryInterval) {
    FakeGuest g("web");
    add(g, on_failure());
    sup.start_health_checks();
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_EQ(timers.begin()->second.first - now, Supervisor::kHealthInterval);
    g.watchdog = "expired";
    advance(Supervisor::kHealthInterval);
    ASSERT_TRUE(g.stop);
    EXPECT_EQ(timers.size(), 1u) << "the next check is scheduled";
}

}  // namespace
}  // namespace vireo
