// The actuator with a fake guest and a fake owner: every check apply()
// makes (guest, process-wide, the controller's mode, held levers and hard
// limits), undo, the decision log and its counters, and the lifecycle
// actions handed to the owner. No KVM: these run on every host.
#include "vmm/actuator/guest_actuator.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace vireo {
namespace {

using namespace std::chrono_literals;

class FakeGuest final : public ActuatedGuest {
public:
    FakeGuest(std::string name, uint64_t ram, unsigned vcpus, unsigned host_cpus)
        : name_(std::move(name)), ram_(ram), host_cpus_(host_cpus), pins_(vcpus) {}
    const std::string& name() const override { return name_; }
    uint64_t ram_bytes() const override { return ram_; }
    std::expected<void, Error> pause() override {
        if (paused) return std::unexpected(Error{ErrorCode::Conflict, "already paused"});
        paused = true;
        return {};
    }
    std::expected<void, Error> resume() override {
        if (!paused) return std::unexpected(Error{ErrorCode::Conflict, "not paused"});
        paused = false;
        return {};
    }
    std::expected<void, Error> pin(unsigned vcpu, const CpuList& cpus) override {
        if (vcpu >= pins_.size()) return std::unexpected(Error{ErrorCode::OutOfRange, "no such vCPU"});
        for (unsigned c : cpus)
            if (c >= host_cpus_) return std::unexpected(Error{ErrorCode::OutOfRange, "no such CPU"});
        pins_[vcpu] = cpus;
        return {};
    }
    std::expected<void, Error> unpin(std::optional<unsigned> vcpu) override {
        if (vcpu && *vcpu >= pins_.size()) return std::unexpected(Error{ErrorCode::OutOfRange, "no such vCPU"});
        for (unsigned i = 0; i < pins_.size(); ++i)
            if (!vcpu || *vcpu == i) pins_[i].reset();
        return {};
    }
    const std::vector<std::optional<CpuList>>& pinning() const override { return pins_; }
    std::expected<void, Error> set_balloon_target(uint64_t bytes) override {
        if (!has_balloon) return std::unexpected(Error{ErrorCode::Unavailable, "no balloon"});
        if (bytes > ram_) return std::unexpected(Error{ErrorCode::OutOfRange, "over RAM"});
        target_ = bytes;
        return {};
    }
    uint64_t balloon_target() const override { return target_; }

    bool paused = false;
    bool has_balloon = true;

private:
    std::string name_;
    uint64_t ram_;
    unsigned host_cpus_;
    std::vector<std::optional<CpuList>> pins_;
    uint64_t target_ = 0;
};

class FakeOwner final : public GuestRegistry {
public:
    ActuatedGuest* find(std::string_view name) override {
        auto it = guests.find(std::string(name));
        return it == guests.end() ? nullptr : &it->second;
    }
    std::expected<void, Error> shutdown(ActuatedGuest& g, std::chrono::milliseconds timeout) override {
        calls.push_back("shutdown " + g.name() + " " + std::to_string(timeout.count()));
        return {};
    }
    std::expected<void, Error> poweroff(ActuatedGuest& g, const Origin& o) override {
        calls.push_back("poweroff " + g.name() + " by " + std::string(to_string(o.source)));
        if (refuse_lifecycle) return std::unexpected(Error{ErrorCode::Conflict, "not running"});
        return {};
    }
    std::expected<void, Error> restart(ActuatedGuest& g, const Origin& o) override {
        calls.push_back("restart " + g.name() + " by " + std::string(to_string(o.source)));
        return {};
    }
    void resumed(ActuatedGuest& g) override { calls.push_back("resumed " + g.name()); }

    std::map<std::string, FakeGuest> guests;
    std::vector<std::string> calls;
    bool refuse_lifecycle = false;
};

constexpr uint64_t kMiB = 1 << 20;
const Origin kCtl{ActionSource::Controller, "test-policy", "test"};
const Origin kAdmin{ActionSource::Admin, "uid 0", "test"};

class GuestActuatorTest : public ::testing::Test {
protected:
    GuestActuatorTest() {
        owner_.guests.emplace("g", FakeGuest("g", 256 * kMiB, 2, 4));
        owner_.guests.emplace("h", FakeGuest("h", 1024 * kMiB, 1, 4));
    }
    GuestActuator& make(ControllerMode mode = ControllerMode::Auto, ControllerLimits limits = {}) {
        GuestActuator::Hooks hooks;
        hooks.post = [this](std::function<void()> task) {
            std::lock_guard lock(mutex_);
            posted_.push_back(std::move(task));
        };
        hooks.decided = [this](const ActionRecord& r) { decided_.push_back(r); };
        hooks.now = [this] { return now_; };
        actuator_.emplace(owner_, std::move(hooks), mode, limits);
        return *actuator_;
    }
    ActionResult target(uint64_t mib, const Origin& o, const std::string& guest = "g") {
        return actuator_->apply(Action{guest, action::BalloonTarget{mib * kMiB}}, o);
    }
    ActionResult pin(unsigned vcpu, CpuList cpus, const Origin& o, const std::string& guest = "g") {
        return actuator_->apply(Action{guest, action::Pin{vcpu, std::move(cpus)}}, o);
    }
    FakeGuest& guest(const std::string& name = "g") { return owner_.guests.at(name); }
    void advance(std::chrono::milliseconds d) { now_ += d; }
    // Runs what submit() posted, as the control thread would.
    size_t run_posted() {
        std::deque<std::function<void()>> tasks;
        {
            std::lock_guard lock(mutex_);
            tasks.swap(posted_);
        }
        for (auto& t : tasks) t();
        return tasks.size();
    }

    FakeOwner owner_;
    std::optional<GuestActuator> actuator_;
    std::vector<ActionRecord> decided_;
    GuestActuator::Clock::time_point now_ = GuestActuator::Clock::time_point{} + 1000h;
    std::mutex mutex_;
    std::deque<std::function<void()>> posted_;
};

// ------------------------------------------------------------ controller limits

TEST_F(GuestActuatorTest, GivingBackIsNeverLimited) {
    make(ControllerMode::Auto, ControllerLimits{.balloon_step_percent = 5, .balloon_interval_s = 3600});
    EXPECT_EQ(target(12, kCtl).outcome, Outcome::Applied) << "one reclaim step of <= 5 %";
    auto again = target(24, kCtl);
    ASSERT_EQ(again.outcome, Outcome::Refused) << "a second reclaim within balloon_interval_s";
    EXPECT_EQ(again.error->code, ErrorCode::OutOfRange);
    EXPECT_NE(again.error->message.find("balloon_interval_s"), std::string::npos) << again.error->message;
    EXPECT_EQ(target(4, kCtl).outcome, Outcome::Applied) << "giving back within the interval";

    // An administrator's big target, then the lever released: the
    // controller gives all of it back in one action, far over the 5 % step.
    EXPECT_EQ(target(150, kAdmin).outcome, Outcome::Applied);
    EXPECT_TRUE(actuator_->control("g").balloon_held) << "a manual target holds the lever";
    EXPECT_EQ(target(0, kCtl).outcome, Outcome::Refused) << "held by the administrator";
    EXPECT_EQ(actuator_->apply(Action{"g", action::GuestControlSet{GuestControl{}}}, kAdmin).outcome, Outcome::Applied);
    EXPECT_EQ(target(0, kCtl).outcome, Outcome::Applied) << "giving back 150 MiB at once";
    EXPECT_EQ(guest().balloon_target(), 0u);
    EXPECT_EQ(target(100, kCtl).outcome, Outcome::Refused) << "reclaim stays limited";
    EXPECT_GE(actuator_->limit_hits().at("balloon_interval_s"), 1u);
}

TEST_F(GuestActuatorTest, BalloonStepAndFloor) {
    make(ControllerMode::Auto, ControllerLimits{.balloon_step_percent = 10, .balloon_interval_s = 0, .balloon_floor_mib = 64});
    auto big = target(26, kCtl);  // 26 MiB of 256 is 10.2 %
    ASSERT_EQ(big.outcome, Outcome::Refused);
    EXPECT_NE(big.error->message.find("limit balloon_step_percent"), std::string::npos) << big.error->message;
    EXPECT_EQ(guest().balloon_target(), 0u) << "a refused action changes nothing";
    for (uint64_t mib = 25; mib <= 175; mib += 25) ASSERT_EQ(target(mib, kCtl).outcome, Outcome::Applied) << mib;
    auto floor = target(193, kCtl);  // would leave 63 MiB
    ASSERT_EQ(floor.outcome, Outcome::Refused);
    EXPECT_NE(floor.error->message.find("limit balloon_floor_mib"), std::string::npos) << floor.error->message;
    EXPECT_EQ(target(192, kCtl).outcome, Outcome::Applied) << "exactly the floor left";
    EXPECT_EQ(actuator_->limit_hits().at("balloon_step_percent"), 1u);
    EXPECT_EQ(actuator_->limit_hits().at("balloon_floor_mib"), 1u);
    // Administrators are not limited.
    EXPECT_EQ(target(250, kAdmin).outcome, Outcome::Applied);
}

TEST_F(GuestActuatorTest, IntervalsHaveHalfASecondOfSlack) {
    make(ControllerMode::Auto, ControllerLimits{.balloon_interval_s = 10, .pin_interval_s = 60});
    ASSERT_EQ(pin(0, {1}, kCtl).outcome, Outcome::Applied);
    advance(59400ms);
    EXPECT_EQ(pin(0, {2}, kCtl).outcome, Outcome::Refused) << "59.4 s after the last re-pin";
    EXPECT_EQ(pin(1, {2}, kCtl).outcome, Outcome::Applied) << "another vCPU has its own interval";
    advance(200ms);
    EXPECT_EQ(pin(0, {2}, kCtl).outcome, Outcome::Applied) << "59.6 s: within the slack";
    EXPECT_EQ(guest().pinning()[0], CpuList{2});

    ASSERT_EQ(target(10, kCtl).outcome, Outcome::Applied);
    advance(9400ms);
    EXPECT_EQ(target(20, kCtl).outcome, Outcome::Refused);
    advance(200ms);
    EXPECT_EQ(target(20, kCtl).outcome, Outcome::Applied);
    EXPECT_EQ(actuator_->limit_hits().at("pin_interval_s"), 1u);
}

TEST_F(GuestActuatorTest, AdminChangesCountForTheControllersInterval) {
    make(ControllerMode::Auto, ControllerLimits{.pin_interval_s = 60});
    ASSERT_EQ(pin(0, {1}, kAdmin).outcome, Outcome::Applied);
    ASSERT_EQ(actuator_->apply(Action{"g", action::GuestControlSet{GuestControl{}}}, kAdmin).outcome, Outcome::Applied);
    auto r = pin(0, {2}, kCtl);
    ASSERT_EQ(r.outcome, Outcome::Refused) << "the vCPU was re-pinned (by anyone) just now";
    EXPECT_NE(r.error->message.find("pin_interval_s"), std::string::npos);
}

TEST_F(GuestActuatorTest, LimitsChangedAtRunTimeApplyAndUndo) {
    GuestActuator& a = make();
    ControllerLimits loose{.balloon_step_percent = 100, .balloon_interval_s = 0, .balloon_floor_mib = 0, .pin_interval_s = 0};
    auto set = a.apply(Action{"", action::ControllerLimitsSet{loose}}, kAdmin);
    ASSERT_EQ(set.outcome, Outcome::Applied);
    EXPECT_EQ(a.controller_limits(), loose);
    EXPECT_EQ(target(256, kCtl).outcome, Outcome::Applied) << "no floor, no step limit";
    const ActionRecord* rec = a.decisions().find(set.seq);
    ASSERT_NE(rec, nullptr);
    ASSERT_EQ(rec->undo.size(), 1u);
    ASSERT_EQ(a.apply(rec->undo[0], kAdmin).outcome, Outcome::Applied);
    EXPECT_EQ(a.controller_limits(), ControllerLimits{});

    ControllerLimits bad = loose;
    bad.balloon_step_percent = 101;
    auto over = a.apply(Action{"", action::ControllerLimitsSet{bad}}, kAdmin);
    ASSERT_EQ(over.outcome, Outcome::Refused);
    EXPECT_EQ(over.error->code, ErrorCode::OutOfRange);
    EXPECT_EQ(a.controller_limits(), ControllerLimits{});
}

// ------------------------------------------------------------ mode, overrides

TEST_F(GuestActuatorTest, ControllerModes) {
    GuestActuator& a = make(ControllerMode::Off);
    auto off = pin(0, {1}, kCtl);
    ASSERT_EQ(off.outcome, Outcome::Refused);
    EXPECT_EQ(off.error->code, ErrorCode::Conflict);

    ASSERT_EQ(a.apply(Action{"", action::ControllerModeSet{ControllerMode::Advise}}, kAdmin).outcome, Outcome::Applied);
    EXPECT_EQ(pin(0, {1}, kCtl).outcome, Outcome::Advised);
    EXPECT_FALSE(guest().pinning()[0]) << "advise changes nothing";

    // A per-guest override beats the process-wide mode.
    ASSERT_EQ(a.apply(Action{"g", action::GuestControlSet{GuestControl{.mode = ControllerMode::Auto}}}, kAdmin).outcome,
              Outcome::Applied);
    EXPECT_EQ(a.effective_mode("g"), ControllerMode::Auto);
    EXPECT_EQ(a.effective_mode("h"), ControllerMode::Advise);
    EXPECT_EQ(pin(0, {1}, kCtl).outcome, Outcome::Applied);
    EXPECT_EQ(pin(0, {1}, kCtl, "h").outcome, Outcome::Advised);
    a.set_initial_control("h", GuestControl{.mode = ControllerMode::Off});
    EXPECT_EQ(pin(0, {1}, kCtl, "h").outcome, Outcome::Refused);
}

TEST_F(GuestActuatorTest, TheControllerMayNotChangeItsOwnMandate) {
    GuestActuator& a = make();
    for (const Action& act : {Action{"", action::ControllerModeSet{ControllerMode::Off}},
                              Action{"", action::ControllerLimitsSet{ControllerLimits{.balloon_floor_mib = 0}}},
                              Action{"g", action::GuestControlSet{GuestControl{.mode = ControllerMode::Auto}}}}) {
        auto r = a.apply(act, kCtl);
        ASSERT_EQ(r.outcome, Outcome::Refused) << action_name(act.body);
        EXPECT_EQ(r.error->code, ErrorCode::Conflict);
    }
    EXPECT_EQ(a.controller_mode(), ControllerMode::Auto);
    EXPECT_EQ(a.controller_limits(), ControllerLimits{});
}

TEST_F(GuestActuatorTest, HeldLeversRefuseTheControllerUntilReleased) {
    GuestActuator& a = make(ControllerMode::Auto, ControllerLimits{.pin_interval_s = 0});
    ASSERT_EQ(actuator_->apply(Action{"g", action::Unpin{}}, kAdmin).outcome, Outcome::Applied);
    EXPECT_TRUE(a.control("g").pin_held);
    EXPECT_FALSE(a.control("g").balloon_held);
    auto r = pin(0, {1}, kCtl);
    ASSERT_EQ(r.outcome, Outcome::Refused);
    EXPECT_NE(r.error->message.find("holds the pinning"), std::string::npos) << r.error->message;
    EXPECT_EQ(target(8, kCtl).outcome, Outcome::Applied) << "the balloon lever is free";
    GuestControl released = a.control("g");
    released.pin_held = false;
    ASSERT_EQ(a.apply(Action{"g", action::GuestControlSet{released}}, kAdmin).outcome, Outcome::Applied);
    EXPECT_EQ(pin(0, {1}, kCtl).outcome, Outcome::Applied);
    EXPECT_FALSE(a.control("g").pin_held) << "the controller's own pin holds nothing";
}

// ------------------------------------------------------------ requests and undo

TEST_F(GuestActuatorTest, WhichActionsNeedAGuest) {
    GuestActuator& a = make();
    auto no_guest = a.apply(Action{"", action::Pause{}}, kAdmin);
    ASSERT_EQ(no_guest.outcome, Outcome::Refused);
    EXPECT_EQ(no_guest.error->code, ErrorCode::BadRequest);
    auto unknown = a.apply(Action{"nope", action::Pause{}}, kAdmin);
    ASSERT_EQ(unknown.outcome, Outcome::Refused);
    EXPECT_EQ(unknown.error->code, ErrorCode::UnknownGuest);
    auto wide = a.apply(Action{"g", action::ControllerModeSet{ControllerMode::Off}}, kAdmin);
    ASSERT_EQ(wide.outcome, Outcome::Refused);
    EXPECT_EQ(wide.error->code, ErrorCode::BadRequest);
    EXPECT_EQ(a.controller_mode(), ControllerMode::Auto);
}

TEST_F(GuestActuatorTest, EveryChangeHasItsUndo) {
    GuestActuator& a = make();
    auto undo_of = [&](const ActionResult& r) {
        const ActionRecord* rec = a.decisions().find(r.seq);
        EXPECT_NE(rec, nullptr);
        return rec ? rec->undo : std::vector<Action>{};
    };
    auto apply_all = [&](const std::vector<Action>& acts) {
        for (const auto& act : acts) ASSERT_EQ(a.apply(act, kAdmin).outcome, Outcome::Applied) << action_name(act.body);
    };

    ASSERT_EQ(pin(1, {3}, kAdmin).outcome, Outcome::Applied);
    auto p = pin(1, {0, 1}, kAdmin);
    ASSERT_EQ(p.outcome, Outcome::Applied);
    apply_all(undo_of(p));
    EXPECT_EQ(guest().pinning()[1], CpuList{3}) << "back to the pin before";

    auto u = a.apply(Action{"g", action::Unpin{}}, kAdmin);
    ASSERT_EQ(u.outcome, Outcome::Applied);
    EXPECT_FALSE(guest().pinning()[1]);
    apply_all(undo_of(u));
    EXPECT_EQ(guest().pinning()[1], CpuList{3});
    EXPECT_FALSE(guest().pinning()[0]) << "only what was pinned is pinned again";

    ASSERT_EQ(target(40, kAdmin).outcome, Outcome::Applied);
    auto b = target(90, kAdmin);
    apply_all(undo_of(b));
    EXPECT_EQ(guest().balloon_target(), 40 * kMiB);

    auto pause = a.apply(Action{"g", action::Pause{}}, kAdmin);
    ASSERT_TRUE(guest().paused);
    apply_all(undo_of(pause));
    EXPECT_FALSE(guest().paused);
    EXPECT_EQ(owner_.calls, std::vector<std::string>{"resumed g"}) << "a resume tells the owner (the pause was no hang)";

    auto mode = a.apply(Action{"", action::ControllerModeSet{ControllerMode::Off}}, kAdmin);
    apply_all(undo_of(mode));
    EXPECT_EQ(a.controller_mode(), ControllerMode::Auto);
}

TEST_F(GuestActuatorTest, ARefusedLeverChangesNothingAndIsLogged) {
    GuestActuator& a = make();
    guest().has_balloon = false;
    auto r = target(10, kAdmin);
    ASSERT_EQ(r.outcome, Outcome::Refused);
    EXPECT_EQ(r.error->code, ErrorCode::Unavailable);
    EXPECT_FALSE(a.control("g").balloon_held) << "a refused manual target holds nothing";
    auto bad_pin = pin(7, {1}, kAdmin);
    ASSERT_EQ(bad_pin.outcome, Outcome::Refused);
    EXPECT_FALSE(a.control("g").pin_held);

    ASSERT_EQ(decided_.size(), 2u) << "every decision is published, refused ones too";
    EXPECT_EQ(decided_[0].outcome, Outcome::Refused);
    EXPECT_TRUE(decided_[0].undo.empty());
    EXPECT_EQ(decided_[1].seq, bad_pin.seq);
    using Key = GuestActuator::ActionKey;
    EXPECT_EQ(a.action_counts().at(Key{ActionSource::Admin, "balloon", Outcome::Refused}), 1u);
    EXPECT_EQ(a.action_counts().at(Key{ActionSource::Admin, "pin", Outcome::Refused}), 1u);
}

TEST_F(GuestActuatorTest, LifecycleActionsGoToTheOwner) {
    GuestActuator& a = make();
    EXPECT_EQ(a.apply(Action{"g", action::Shutdown{250ms}}, kAdmin).outcome, Outcome::Applied);
    EXPECT_EQ(a.apply(Action{"g", action::Restart{}}, Origin{ActionSource::Supervisor, "restart-policy", "panic"}).outcome,
              Outcome::Applied);
    owner_.refuse_lifecycle = true;
    auto off = a.apply(Action{"h", action::Poweroff{}}, kAdmin);
    ASSERT_EQ(off.outcome, Outcome::Refused);
    EXPECT_EQ(off.error->message, "not running");
    EXPECT_EQ(owner_.calls, (std::vector<std::string>{"shutdown g 250", "restart g by supervisor", "poweroff h by admin"}));
    // The controller may restart or power off only as its mode allows.
    a.set_initial_control("g", GuestControl{.mode = ControllerMode::Advise});
    EXPECT_EQ(a.apply(Action{"g", action::Restart{}}, kCtl).outcome, Outcome::Advised);
    EXPECT_EQ(owner_.calls.size(), 3u);
}

TEST_F(GuestActuatorTest, ConfigChangesAreLoggedWithTheirUndo) {
    GuestActuator& a = make();
    a.record_applied(Action{"g", action::Pin{0, {2}}}, Origin{ActionSource::Config, "config", "pinning from the config file"},
                     {Action{"g", action::Unpin{0}}});
    ASSERT_EQ(a.decisions().size(), 1u);
    const ActionRecord* rec = a.decisions().recent(1)[0];
    EXPECT_EQ(rec->origin.source, ActionSource::Config);
    EXPECT_EQ(rec->outcome, Outcome::Applied);
    ASSERT_EQ(rec->undo.size(), 1u);
    EXPECT_EQ(decided_.size(), 1u);
}

TEST_F(GuestActuatorTest, SubmitRunsOnTheControlThread) {
    GuestActuator& a = make();
    std::future<ActionResult> f;
    std::thread other([&] { f = a.submit(Action{"g", action::BalloonTarget{8 * kMiB}}, kCtl); });
    other.join();
    EXPECT_EQ(guest().balloon_target(), 0u) << "nothing happens until the control thread runs it";
    EXPECT_EQ(run_posted(), 1u);
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(f.get().outcome, Outcome::Applied);
    EXPECT_EQ(guest().balloon_target(), 8 * kMiB);
}

}  // namespace
}  // namespace vireo
