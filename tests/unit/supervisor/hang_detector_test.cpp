#include "vmm/supervisor/hang_detector.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using Clock = HangDetector::Clock;

// Feeds `d` samples every 250 ms; returns the time of the first hang (or nullopt).
struct Feeder {
    HangDetector det;
    Clock::time_point t = Clock::time_point{} + 1h;
    uint64_t progress = 0;
    std::optional<Clock::duration> first_hang;
    Clock::time_point started = t;
    explicit Feeder(HangSettings s = {}) : det(s) { det.reset(t); }
    void run(Clock::duration d, bool advancing, bool busy = true) {
        for (auto end = t + d; t < end;) {
            t += 250ms;
            if (advancing) ++progress;
            if (det.sample(t, {progress, busy}) && !first_hang) first_hang = t - started;
        }
    }
};

TEST(HangDetector, ASpinningGuestIsHungAfterTheMinimum) {
    Feeder f;
    f.run(2s, true);  // booting, chatty
    f.run(20s, false);
    ASSERT_TRUE(f.first_hang);
    // quiet since 2 s; min 5 s (the learned quiet spells are ~250 ms)
    EXPECT_GE(*f.first_hang, 7s);
    EXPECT_LE(*f.first_hang, 7250ms);
}

TEST(HangDetector, IdleIsNotHung) {
    Feeder f;
    f.run(1s, true);
    f.run(10min, false, /*busy=*/false);  // halted or waiting in vireo for ten minutes
    EXPECT_FALSE(f.first_hang);
}

TEST(HangDetector, LearnsLongQuietSpellsAsNormal) {
    Feeder f;
    // A guest whose busy phases go quiet for 4 s between two device accesses.
    for (int i = 0; i < 5; ++i) {
        f.run(4s, false);
        f.run(250ms, true);
    }
    EXPECT_FALSE(f.first_hang) << "4 s quiet spells are this guest's normal";
    EXPECT_GE(f.det.learned_quiet(f.t), 3500ms);
    EXPECT_GE(f.det.threshold(f.t), 14s);  // 4 x ~4 s
    f.run(30s, false);
    ASSERT_TRUE(f.first_hang);
    EXPECT_GE(*f.first_hang - 21250ms, 14s);  // quiet began at 21.25 s
}

TEST(HangDetector, ForgetsOldQuietSpells) {
    HangSettings s;
    s.half_life = 60s;
    Feeder f(s);
    f.run(20s, false, true);  // one long quiet spell: it fires at 5 s...
    ASSERT_TRUE(f.first_hang);
    f.run(250ms, true);       // ... and the spell ends (20 s learned)
    auto learned = f.det.learned_quiet(f.t);
    EXPECT_GE(learned, 19s);
    f.run(10min, true);        // ten chatty minutes = 10 half-lives
    EXPECT_LE(f.det.learned_quiet(f.t), 300ms);  // only the sampling period's own quiet spells remain
    EXPECT_EQ(f.det.threshold(f.t), s.min);
}

TEST(HangDetector, ThresholdIsCapped) {
    HangSettings s;
    s.max = 30s;
    Feeder f(s);
    f.run(100s, false, false);
    f.run(20s, false, true);
    f.run(250ms, true);  // a learned 20 s spell: 4x = 80 s, capped at 30 s
    EXPECT_EQ(f.det.threshold(f.t), 30s);
}

TEST(HangDetector, FiresOncePerHangAndNotWhenDisabled) {
    Feeder f;
    f.run(60s, false);
    int fired = 0;
    for (int i = 0; i < 10; ++i)
        if (f.det.sample(f.t += 250ms, {f.progress, true})) ++fired;
    EXPECT_EQ(fired, 0);  // already reported
    HangSettings off;
    off.enabled = false;
    Feeder g(off);
    g.run(10min, false);
    EXPECT_FALSE(g.first_hang);
}

TEST(HangDetector, EvidenceSaysWhy) {
    HangDetector d;
    auto t = Clock::time_point{} + 1h;
    d.reset(t);
    d.sample(t, {1, true});
    std::optional<std::string> e;
    for (int i = 0; i < 40 && !e; ++i) e = d.sample(t += 250ms, {1, true});
    ASSERT_TRUE(e);
    EXPECT_NE(e->find("no progress for 5."), std::string::npos) << *e;
    EXPECT_NE(e->find("every vCPU running guest code"), std::string::npos) << *e;
}

}  // namespace
}  // namespace vireo
