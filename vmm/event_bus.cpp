#include "vmm/event_bus.h"

#include <time.h>

#include "vmm/wall_time.h"

namespace vireo {

std::string event_line(const Event& e) {
    nlohmann::json j = e.data.is_object() ? e.data : nlohmann::json::object();
    j["seq"] = e.seq;
    j["time"] = iso8601(e.time_ns);
    j["type"] = e.type;
    if (!e.guest.empty()) j["guest"] = e.guest;
    return nlohmann::json{{"event", std::move(j)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

uint64_t EventBus::publish(std::string type, std::string guest, nlohmann::json data) {
    Event e{next_seq_++, realtime_ns(), std::move(type), std::move(guest), std::move(data)};
    uint64_t seq = e.seq;
    ring_.push_back(e);
    while (ring_.size() > keep_) {
        ring_.pop_front();
        ++evicted_;
    }
    if (delivering_) {
        pending_.push_back(std::move(e));
        return seq;
    }
    delivering_ = true;
    deliver(e);
    while (!pending_.empty()) {
        Event next = std::move(pending_.front());
        pending_.pop_front();
        deliver(next);
    }
    delivering_ = false;
    return seq;
}

void EventBus::deliver(const Event& event) {
    // A copy of the ids: callbacks may unsubscribe themselves or others.
    std::vector<SubscriberId> ids;
    ids.reserve(subscribers_.size());
    for (const auto& [id, _] : subscribers_) ids.push_back(id);
    for (SubscriberId id : ids) {
        auto it = subscribers_.find(id);
        if (it == subscribers_.end()) continue;
        auto fn = it->second;
        fn(event);
    }
}

EventBus::SubscriberId EventBus::subscribe(Subscriber subscriber) {
    SubscriberId id = next_subscriber_++;
    subscribers_[id] = std::move(subscriber);
    return id;
}

void EventBus::unsubscribe(SubscriberId id) { subscribers_.erase(id); }

std::vector<Event> EventBus::since(uint64_t since, uint64_t* missed) const {
    std::vector<Event> out;
    uint64_t first_kept = ring_.empty() ? next_seq_ : ring_.front().seq;
    if (missed) *missed = since < first_kept ? first_kept - std::max<uint64_t>(since, 1) : 0;
    for (const auto& e : ring_)
        if (e.seq >= since) out.push_back(e);
    return out;
}

}  // namespace vireo
