// The event bus and the decision log: ordering, re-entrancy, bounded rings
// that report what they dropped.
#include <gtest/gtest.h>

#include "vmm/action_log.h"
#include "vmm/event_bus.h"

namespace vireo {
namespace {

TEST(EventBus, DeliversInOrderIncludingEventsPublishedBySubscribers) {
    EventBus bus;
    std::vector<uint64_t> a, b;
    bus.subscribe([&](const Event& e) {
        a.push_back(e.seq);
        if (e.type == "first") bus.publish("second", "g");  // re-entrant: delivered after "first"
    });
    bus.subscribe([&](const Event& e) { b.push_back(e.seq); });
    EXPECT_EQ(bus.publish("first", "g", {{"x", 1}}), 1u);
    EXPECT_EQ(a, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(b, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(bus.next_seq(), 3u);
}

TEST(EventBus, UnsubscribeDuringDelivery) {
    EventBus bus;
    int calls = 0;
    EventBus::SubscriberId second = 0;
    bus.subscribe([&](const Event&) { bus.unsubscribe(second); });
    second = bus.subscribe([&](const Event&) { ++calls; });
    bus.publish("x", "");
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(bus.subscribers(), 1u);
}

TEST(EventBus, RingReplayAndMissed) {
    EventBus bus(4);
    for (int i = 0; i < 10; ++i) bus.publish("e", "");
    uint64_t missed = 0;
    auto kept = bus.since(1, &missed);
    ASSERT_EQ(kept.size(), 4u);
    EXPECT_EQ(kept.front().seq, 7u);
    EXPECT_EQ(missed, 6u);
    kept = bus.since(9, &missed);
    EXPECT_EQ(kept.size(), 2u);
    EXPECT_EQ(missed, 0u);
    EXPECT_EQ(bus.evicted(), 6u);
    auto line = event_line(kept.front());
    EXPECT_NE(line.find("\"seq\":9"), std::string::npos) << line;
    EXPECT_NE(line.find("\"type\":\"e\""), std::string::npos) << line;
}

TEST(ActionLog, SequenceFindAndEviction) {
    ActionLog log(3);
    for (int i = 0; i < 5; ++i) log.append(ActionRecord{.action = {"g", action::Pause{}}});
    EXPECT_EQ(log.next_seq(), 6u);
    EXPECT_EQ(log.size(), 3u);
    EXPECT_EQ(log.evicted(), 2u);
    EXPECT_EQ(log.find(1), nullptr);
    ASSERT_NE(log.find(4), nullptr);
    EXPECT_EQ(log.find(4)->seq, 4u);
    auto recent = log.recent(2);
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0]->seq, 5u);
    EXPECT_EQ(recent[1]->seq, 4u);
}

}  // namespace
}  // namespace vireo
