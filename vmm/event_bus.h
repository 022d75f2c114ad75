// The host's event bus: guest state changes, faults, restarts, applied
// actions and controller decisions, each with a sequence number, published
// on the control thread and handed to every subscriber in order (control
// socket subscriptions, later the supervisor and the controller).
//
// Recent events are kept in a ring so a subscriber can start from a
// sequence number it already saw (`events` request, `since`) and lose
// nothing across a reconnect; what fell out of the ring is reported, not
// silently skipped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vireo {

struct Event {
    uint64_t seq = 0;
    int64_t time_ns = 0;  // CLOCK_REALTIME
    std::string type;     // "state", "fault", "stop", "action", "restart", "subscriber-dropped", ...
    std::string guest;    // empty for process-wide events
    nlohmann::json data;  // type-specific fields
};

// {"event":{"seq":..,"time":"2024-..Z","type":..,"guest":..,...data}}
std::string event_line(const Event& event);

class EventBus {
public:
    using SubscriberId = uint64_t;
    using Subscriber = std::function<void(const Event&)>;

    explicit EventBus(size_t keep = 4096) : keep_(keep ? keep : 1) {}

    // Control thread. A subscriber may publish or (un)subscribe from its
    // callback: such events are delivered after the current one, in order.
    uint64_t publish(std::string type, std::string guest, nlohmann::json data = nlohmann::json::object());
    SubscriberId subscribe(Subscriber subscriber);
    void unsubscribe(SubscriberId id);

    uint64_t next_seq() const { return next_seq_; }
    // Kept events with seq >= `since`; `missed` is how many of those were
    // already evicted from the ring.
    std::vector<Event> since(uint64_t since, uint64_t* missed = nullptr) const;
    uint64_t published() const { return next_seq_ - 1; }
    uint64_t evicted() const { return evicted_; }
    size_t subscribers() const { return subscribers_.size(); }

private:
    void deliver(const Event& event);

    size_t keep_;
    uint64_t next_seq_ = 1;
    uint64_t evicted_ = 0;
    std::deque<Event> ring_;
    std::map<SubscriberId, Subscriber> subscribers_;
    SubscriberId next_subscriber_ = 1;
    bool delivering_ = false;
    std::deque<Event> pending_;
};

}  // namespace vireo
