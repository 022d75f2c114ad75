// The guest's I/O thread: one per guest, one io_uring. It waits on the
// queue-notify eventfds KVM signals (ioeventfd), on timers, and on the disk
// reads, writes and fsyncs the devices submit, and runs each completion's
// handler on this thread. Devices signal interrupts from here through
// irqfds, so a request never needs a vCPU thread after its notification.
//
// Threading: watch/add_timer/post/stop may be called from any thread; sqe()
// and everything a handler does run on the I/O thread only. Submission is
// batched: SQEs prepared while handling one batch of completions go to the
// kernel together at the top of the next loop (one io_uring_enter).
#pragma once

#include <liburing.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vmm/kvm/unique_fd.h"

namespace vireo {

// Whatever an SQE's completion belongs to. Its address is the user_data, so
// it must outlive the operation (devices keep request slots in a pool).
class IoCompletion {
public:
    virtual void io_complete(int32_t result) = 0;

protected:
    ~IoCompletion() = default;
};

struct IoThreadCounters {
    std::atomic<uint64_t> loops{0};        // io_uring_enter round trips
    std::atomic<uint64_t> completions{0};  // CQEs handled
    std::atomic<uint64_t> sq_full{0};      // SQ ring full: submitted early to make room
    std::atomic<uint64_t> wakeups{0};      // eventfd/timer watches that fired
    std::atomic<uint64_t> poll_timeouts{0};  // waits that ended by the poll interval
};

class IoThread {
public:
    // `name` becomes the thread name (at most 15 characters are kept).
    static std::expected<std::unique_ptr<IoThread>, std::string> create(std::string name, unsigned entries = 256);
    ~IoThread();  // stop()
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    // Runs `on_ready` on the I/O thread each time `fd` (an eventfd or timerfd,
    // made blocking here: io_uring returns EAGAIN on O_NONBLOCK files) becomes
    // readable; the counter is consumed first.
    void watch(int fd, std::function<void()> on_ready);
    // Runs `fn` after `first`, then every `period` (0: once).
    std::expected<void, std::string> add_timer(std::chrono::nanoseconds first, std::chrono::nanoseconds period,
                                               std::function<void()> fn);
    // Runs `fn` on the I/O thread soon (dropped if the thread has stopped).
    void post(std::function<void()> fn);
    // Runs after every batch of completions (devices publish used rings and
    // raise one interrupt per batch here) and after every poll timeout. A
    // hook returns true while it wants to be polled: the thread then waits
    // at most kPollInterval for the next completion before calling it again
    // (devices look at their rings this way while requests are in flight,
    // instead of making the guest pay an exit per notification). Before
    // start() only.
    void add_batch_hook(std::function<bool()> fn);
    static constexpr std::chrono::microseconds kPollInterval{20};

    void start();
    // Cancels what is in flight, waits (bounded) for it to finish, joins.
    // Idempotent; no thread is left behind.
    void stop();

    // I/O thread only: an SQE whose completion goes to `owner`, or nullptr
    // once the thread is stopping (the caller fails its request).
    // `tag` goes into the top 16 bits of the user_data (the owner's address
    // fits in the low 48), e.g. the blk probe's VIREO_BLK_USER_DATA tag.
    io_uring_sqe* sqe(IoCompletion* owner, uint64_t tag = 0);
    bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
    bool stopping() const { return stopping_.load(std::memory_order_acquire); }
    // Operations handed to the kernel and not yet completed (watches included).
    uint64_t outstanding() const { return outstanding_; }
    pid_t tid() const { return tid_.load(std::memory_order_acquire); }
    const std::string& name() const { return name_; }
    const IoThreadCounters& counters() const { return counters_; }

private:
    struct Watch;
    IoThread() = default;
    void loop();
    void arm(Watch& w);
    void run_posted();
    void dispatch(uint64_t user_data, int32_t res);
    void drain_on_stop();

    std::string name_;
    io_uring ring_{};
    bool ring_ok_ = false;
    UniqueFd wake_;  // eventfd: post() and stop()
    std::thread thread_;
    std::atomic<bool> started_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<pid_t> tid_{0};
    uint64_t outstanding_ = 0;

    std::vector<std::unique_ptr<Watch>> watches_;  // I/O thread after start()
    std::vector<std::function<bool()>> batch_hooks_;
    bool polling_ = false;  // a hook asked to be called again soon
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    IoThreadCounters counters_;
};

}  // namespace vireo
