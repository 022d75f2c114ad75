// The per-guest I/O thread: eventfd watches, posted work, timers, I/O
// completions, and a clean stop that leaves no thread behind.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "vmm/io/io_thread.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;

template <typename Pred>
bool eventually(Pred p, std::chrono::milliseconds timeout = 3s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (p()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return p();
}

int thread_count() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/task");
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

std::string thread_name(pid_t tid) {
    char buf[64] = {};
    int fd = ::open(("/proc/self/task/" + std::to_string(tid) + "/comm").c_str(), O_RDONLY);
    if (fd < 0) return {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    std::string s(buf, n > 0 ? size_t(n) : 0);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

TEST(IoThread, WatchPostTimerAndStop) {
    int before = thread_count();
    auto t = IoThread::create("io/gtest-a-very-long-name");
    ASSERT_TRUE(t) << t.error();
    IoThread& io = **t;
    EXPECT_EQ(io.name(), "io/gtest-a-very");  // 15 characters
    UniqueFd ev(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    std::atomic<int> wakes{0}, posted{0}, ticks{0};
    io.watch(ev.get(), [&] { wakes.fetch_add(1); });
    ASSERT_TRUE(io.add_timer(10ms, 10ms, [&] { ticks.fetch_add(1); }));
    io.start();
    EXPECT_TRUE(eventually([&] { return io.tid() != 0; }));
    EXPECT_EQ(thread_name(io.tid()), "io/gtest-a-very");
    ::eventfd_write(ev.get(), 1);
    EXPECT_TRUE(eventually([&] { return wakes.load() == 1; }));
    ::eventfd_write(ev.get(), 3);  // one wake-up consumes the whole count
    EXPECT_TRUE(eventually([&] { return wakes.load() == 2; }));
    io.post([&] { posted.fetch_add(1); });
    EXPECT_TRUE(eventually([&] { return posted.load() == 1; }));
    EXPECT_TRUE(eventually([&] { return ticks.load() >= 3; }));
    // A watch added while running.
    UniqueFd ev2(::eventfd(0, EFD_CLOEXEC));
    std::atomic<int> wakes2{0};
    io.watch(ev2.get(), [&] { wakes2.fetch_add(1); });
    EXPECT_TRUE(eventually([&] {
        ::eventfd_write(ev2.get(), 1);
        return wakes2.load() >= 1;
    }));
    io.stop();
    io.stop();  // idempotent
    EXPECT_EQ(thread_count(), before);
    t->reset();
    EXPECT_EQ(thread_count(), before);
}

struct ReadOp final : IoCompletion {
    std::atomic<int> result{1};
    void io_complete(int32_t res) override { result.store(res); }
};

TEST(IoThread, SubmitsAndCompletesIo) {
    auto t = IoThread::create("io/gtest");
    ASSERT_TRUE(t) << t.error();
    IoThread& io = **t;
    io.start();
    UniqueFd f(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    char buf[4] = {};
    ReadOp op;
    io.post([&] {
        io_uring_sqe* s = io.sqe(&op);
        ASSERT_NE(s, nullptr);
        io_uring_prep_read(s, f.get(), buf, 4, 0);
    });
    EXPECT_TRUE(eventually([&] { return op.result.load() != 1; }));
    EXPECT_EQ(op.result.load(), 4);
    EXPECT_EQ(std::memcmp(buf, "\x7f" "ELF", 4), 0);
    io.stop();
}

TEST(IoThread, StopCancelsPendingWatchesAndReadsQuickly) {
    auto t = IoThread::create("io/gtest");
    ASSERT_TRUE(t) << t.error();
    IoThread& io = **t;
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd r(p[0]), w(p[1]);
    ReadOp op;
    char buf[8];
    io.start();
    // A read that never completes by itself: stop() must cancel it.
    io.post([&] {
        io_uring_sqe* s = io.sqe(&op);
        io_uring_prep_read(s, r.get(), buf, sizeof buf, 0);
    });
    EXPECT_TRUE(eventually([&] { return io.outstanding() >= 2; }));
    auto t0 = std::chrono::steady_clock::now();
    io.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(op.result.load(), -ECANCELED);
    EXPECT_EQ(io.outstanding(), 0u);
}

}  // namespace
}  // namespace vireo
