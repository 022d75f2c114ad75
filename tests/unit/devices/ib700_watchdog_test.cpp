#include "vmm/devices/ib700_watchdog.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"
#include "vmm/wall_time.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;

TEST(Ib700Watchdog, TimeoutTable) {
    EXPECT_EQ(Ib700Watchdog::timeout_for(0), 30s);
    EXPECT_EQ(Ib700Watchdog::timeout_for(14), 2s);
    EXPECT_EQ(Ib700Watchdog::timeout_for(15), 0s);
    EXPECT_EQ(Ib700Watchdog::timeout_for(0x1e), 2s);  // only the low 4 bits count
}

TEST(Ib700Watchdog, DisarmedUntilTheGuestArmsIt) {
    Ib700Watchdog w;
    EXPECT_FALSE(w.armed());
    EXPECT_FALSE(w.expired(monotonic_ns() + 3600'000'000'000ull));
    EXPECT_EQ(test::read8(w, 0), 0xff);
    EXPECT_EQ(test::read8(w, 2), 0xff);
}

TEST(Ib700Watchdog, ExpiresAfterTheGuestsTimeoutUnlessFed) {
    Ib700Watchdog w;
    test::write8(w, Ib700Watchdog::kStartOffset, 14);  // 2 s
    EXPECT_TRUE(w.armed());
    uint64_t t = monotonic_ns();
    EXPECT_FALSE(w.expired(t + 1'900'000'000ull));
    auto e = w.expired(t + 2'100'000'000ull);
    ASSERT_TRUE(e);
    EXPECT_NE(e->find("timeout 2.0 s"), std::string::npos) << *e;
    test::write8(w, Ib700Watchdog::kStartOffset, 14);  // fed: a new deadline from now
    EXPECT_FALSE(w.expired(monotonic_ns() + 1'900'000'000ull));
    EXPECT_EQ(w.pings(), 2u);
}

TEST(Ib700Watchdog, StopDisarms) {
    Ib700Watchdog w;
    test::write8(w, Ib700Watchdog::kStartOffset, 15);  // 0 s: expired at once
    EXPECT_TRUE(w.expired(monotonic_ns() + 1));
    test::write8(w, Ib700Watchdog::kStopOffset, 0);
    EXPECT_FALSE(w.armed());
    EXPECT_FALSE(w.expired(monotonic_ns() + 3600'000'000'000ull));
}

TEST(Ib700Watchdog, HostTimeoutOverridesTheGuests) {
    Ib700Watchdog w(500ms);
    test::write8(w, Ib700Watchdog::kStartOffset, 0);  // the guest asks for 30 s
    uint64_t t = monotonic_ns();
    EXPECT_TRUE(w.expired(t + 600'000'000ull));
}

TEST(Ib700Watchdog, OddAccessesAreHarmless) {
    Ib700Watchdog w;
    test::write8(w, 1, 0);  // 0x442: nothing there
    EXPECT_FALSE(w.armed());
    w.write(Ib700Watchdog::kStartOffset, {});
    EXPECT_FALSE(w.armed());
}

}  // namespace
}  // namespace vireo
