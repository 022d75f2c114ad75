// The control thread's loop: epoll over descriptors (signals, guests' stop
// eventfds, control and metrics sockets), timers, and tasks posted from
// other threads. Everything it runs runs on that one thread, so the state
// it serves (guests, the decision log, the event bus) needs no locks.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "vmm/kvm/unique_fd.h"

namespace vireo {

class EventLoop {
public:
    using Clock = std::chrono::steady_clock;
    using FdHandler = std::function<void(uint32_t events)>;
    using TimerId = uint64_t;

    static std::expected<std::unique_ptr<EventLoop>, std::string> create();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Loop thread only. `events` are EPOLLIN/EPOLLOUT/...; a handler may
    // add or remove any descriptor, itself included.
    std::expected<void, std::string> add(int fd, uint32_t events, FdHandler handler);
    void modify(int fd, uint32_t events);
    void remove(int fd);

    TimerId at(Clock::time_point when, std::function<void()> fn);
    TimerId after(std::chrono::milliseconds delay, std::function<void()> fn) { return at(Clock::now() + delay, std::move(fn)); }
    void cancel(TimerId id);

    // Any thread: runs `fn` on the loop thread soon (FIFO).
    void post(std::function<void()> fn);

    // Runs until stop(); returns at once if stop() was called before.
    void run();
    void stop() { stopping_ = true; }  // loop thread
    bool stopping() const { return stopping_; }

private:
    EventLoop() = default;
    void run_timers();
    void run_posted();
    int timeout_ms() const;

    struct Registration {
        int fd;
        std::shared_ptr<FdHandler> handler;
    };
    UniqueFd epoll_;
    UniqueFd wake_;  // eventfd: post() wakes the loop
    uint64_t next_id_ = 1;
    std::unordered_map<uint64_t, Registration> by_id_;
    std::unordered_map<int, uint64_t> by_fd_;
    std::multimap<Clock::time_point, TimerId> timer_order_;
    std::unordered_map<TimerId, std::pair<Clock::time_point, std::function<void()>>> timers_;
    bool stopping_ = false;

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
};

}  // namespace vireo
