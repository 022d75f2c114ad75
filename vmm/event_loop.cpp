#include "vmm/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo {

std::expected<std::unique_ptr<EventLoop>, std::string> EventLoop::create() {
    std::unique_ptr<EventLoop> loop(new EventLoop());
    loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!loop->epoll_) return std::unexpected(fmt::format("epoll_create1: {}", std::strerror(errno)));
    loop->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!loop->wake_) return std::unexpected(fmt::format("eventfd: {}", std::strerror(errno)));
    EventLoop* self = loop.get();
    if (auto r = loop->add(loop->wake_.get(), EPOLLIN, [self](uint32_t) {
            uint64_t v;
            while (::read(self->wake_.get(), &v, sizeof v) > 0) {
            }
            self->run_posted();
        });
        !r)
        return std::unexpected(r.error());
    return loop;
}

std::expected<void, std::string> EventLoop::add(int fd, uint32_t events, FdHandler handler) {
    uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        return std::unexpected(fmt::format("epoll_ctl(ADD, fd {}): {}", fd, std::strerror(errno)));
    by_id_[id] = {fd, std::make_shared<FdHandler>(std::move(handler))};
    by_fd_[fd] = id;
    return {};
}

void EventLoop::modify(int fd, uint32_t events) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = it->second;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    by_id_.erase(it->second);
    by_fd_.erase(it);
}

EventLoop::TimerId EventLoop::at(Clock::time_point when, std::function<void()> fn) {
    TimerId id = next_id_++;
    timers_[id] = {when, std::move(fn)};
    timer_order_.emplace(when, id);
    return id;
}

void EventLoop::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    auto [lo, hi] = timer_order_.equal_range(it->second.first);
    for (auto o = lo; o != hi; ++o)
        if (o->second == id) {
            timer_order_.erase(o);
            break;
        }
    timers_.erase(it);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
    (void)ignored;
}

void EventLoop::run_posted() {
    std::vector<std::function<void()>> tasks;
    {
        std::lock_guard lock(posted_mutex_);
        tasks.swap(posted_);
    }
    for (auto& t : tasks) t();
}

void EventLoop::run_timers() {
    auto now = Clock::now();
    while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
        TimerId id = timer_order_.begin()->second;
        timer_order_.erase(timer_order_.begin());
        auto it = timers_.find(id);
        if (it == timers_.end()) continue;
        auto fn = std::move(it->second.second);
        timers_.erase(it);
        fn();
    }
}

int EventLoop::timeout_ms() const {
    if (timer_order_.empty()) return -1;
    auto left = timer_order_.begin()->first - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    // Rounded up: waking a little late is fine, spinning early is not.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 3600000 ? 3600000 : int(ms);
}

void EventLoop::run() {
    epoll_event events[64];
    while (!stopping_) {
        int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms());
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // EBADF/EINVAL: a programming error; nothing would wake us again
        }
        for (int i = 0; i < n && !stopping_; ++i) {
            auto it = by_id_.find(events[i].data.u64);
            if (it == by_id_.end()) continue;  // removed by an earlier handler of this batch
            auto handler = it->second.handler;  // alive while it runs, even if it removes itself
            (*handler)(events[i].events);
        }
        if (!stopping_) run_timers();
    }
}

}  // namespace vireo
