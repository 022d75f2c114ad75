#include "vmm/io/io_thread.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/log.h"
#include "vmm/security/seccomp_filters.h"

namespace vireo {

// A read of 8 bytes from a watched fd, re-armed after each completion.
struct IoThread::Watch final : IoCompletion {
    IoThread* thread = nullptr;
    int fd = -1;
    UniqueFd owned;  // timers own their timerfd
    uint64_t value = 0;
    std::function<void()> fn;
    void io_complete(int32_t res) override {
        if (thread->stopping()) return;
        if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
            log_error("{}: read of watched fd {} failed: {}; it is no longer watched", thread->name_, fd,
                      std::strerror(-res));
            return;
        }
        thread->counters_.wakeups.fetch_add(1, std::memory_order_relaxed);
        if (res > 0) fn();
        thread->arm(*this);
    }
};

std::expected<std::unique_ptr<IoThread>, std::string> IoThread::create(std::string name, unsigned entries) {
    std::unique_ptr<IoThread> t(new IoThread());
    if (name.size() > 15) name.resize(15);
    t->name_ = std::move(name);
    io_uring_params params{};
    // COOP_TASKRUN: completions are reaped when this thread enters the
    // kernel anyway, without an IPI each (5.19+; retried without).
    params.flags = IORING_SETUP_COOP_TASKRUN;
    int r = io_uring_queue_init_params(entries, &t->ring_, &params);
    if (r == -EINVAL) {
        params = {};
        r = io_uring_queue_init_params(entries, &t->ring_, &params);
    }
    if (r < 0) return std::unexpected(fmt::format("io_uring_queue_init: {}", std::strerror(-r)));
    t->ring_ok_ = true;
    if (!(params.features & IORING_FEAT_NODROP))
        log_warn("{}: this kernel's io_uring may drop completions under overload (no IORING_FEAT_NODROP)", t->name_);
    t->wake_.reset(::eventfd(0, EFD_CLOEXEC));
    if (!t->wake_) return std::unexpected(fmt::format("eventfd: {}", std::strerror(errno)));
    IoThread* self = t.get();
    t->watch(t->wake_.get(), [self] { self->run_posted(); });
    return t;
}

IoThread::~IoThread() {
    stop();
    if (ring_ok_) io_uring_queue_exit(&ring_);
}

void IoThread::watch(int fd, std::function<void()> on_ready) {
    // io_uring honours O_NONBLOCK with -EAGAIN instead of waiting.
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    auto w = std::make_unique<Watch>();
    w->thread = this;
    w->fd = fd;
    w->fn = std::move(on_ready);
    if (!started_.load(std::memory_order_acquire)) {
        watches_.push_back(std::move(w));
        return;
    }
    // Watch is not copyable (the UniqueFd): hand it over through a shared_ptr.
    auto holder = std::make_shared<std::unique_ptr<Watch>>(std::move(w));
    post([this, holder] {
        watches_.push_back(std::move(*holder));
        arm(*watches_.back());
    });
}

std::expected<void, std::string> IoThread::add_timer(std::chrono::nanoseconds first, std::chrono::nanoseconds period,
                                                     std::function<void()> fn) {
    UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    if (!tfd) return std::unexpected(fmt::format("timerfd_create: {}", std::strerror(errno)));
    auto ts = [](std::chrono::nanoseconds ns) {
        timespec t{};
        t.tv_sec = time_t(ns.count() / 1000000000);
        t.tv_nsec = long(ns.count() % 1000000000);
        return t;
    };
    itimerspec spec{};
    spec.it_value = ts(first.count() > 0 ? first : std::chrono::nanoseconds(1));
    spec.it_interval = ts(period);
    if (::timerfd_settime(tfd.get(), 0, &spec, nullptr) != 0)
        return std::unexpected(fmt::format("timerfd_settime: {}", std::strerror(errno)));
    int fd = tfd.get();
    auto holder = std::make_shared<UniqueFd>(std::move(tfd));
    // The watch owns the timerfd from here on.
    watch(fd, std::move(fn));
    auto adopt = [this, fd, holder] {
        for (auto& w : watches_)
            if (w->fd == fd) w->owned = std::move(*holder);
    };
    if (started_.load(std::memory_order_acquire))
        post(adopt);
    else
        adopt();
    return {};
}

void IoThread::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    (void)::eventfd_write(wake_.get(), 1);
}

void IoThread::add_batch_hook(std::function<bool()> fn) { batch_hooks_.push_back(std::move(fn)); }

void IoThread::run_posted() {
    std::vector<std::function<void()>> tasks;
    {
        std::lock_guard lock(posted_mutex_);
        tasks.swap(posted_);
    }
    for (auto& t : tasks)
        if (!stopping()) t();
}

void IoThread::start() {
    if (started_.exchange(true)) return;
    thread_ = std::thread([this] { loop(); });
}

void IoThread::stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true, std::memory_order_release);
    (void)::eventfd_write(wake_.get(), 1);
    thread_.join();
}

namespace {
// User-space addresses fit in 47 bits: the low 48 bits of a user_data are
// the owner, the top 16 a tag for tracing (bpf/probe_abi.h).
constexpr uint64_t kOwnerMask = (1ull << 48) - 1;
}  // namespace

io_uring_sqe* IoThread::sqe(IoCompletion* owner, uint64_t tag) {
    if (stopping()) return nullptr;
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {
        // The SQ ring is full: hand what is queued to the kernel now.
        counters_.sq_full.fetch_add(1, std::memory_order_relaxed);
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
        if (!s) return nullptr;
    }
    io_uring_sqe_set_data64(s, (tag & ~kOwnerMask) | (uint64_t(uintptr_t(owner)) & kOwnerMask));
    ++outstanding_;
    return s;
}

void IoThread::arm(Watch& w) {
    io_uring_sqe* s = sqe(&w);
    if (!s) return;
    io_uring_prep_read(s, w.fd, &w.value, sizeof w.value, 0);
}

void IoThread::dispatch(uint64_t user_data, int32_t res) {
    if (outstanding_) --outstanding_;
    counters_.completions.fetch_add(1, std::memory_order_relaxed);
    if (user_data == 0) return;  // our own cancel requests
    reinterpret_cast<IoCompletion*>(uintptr_t(user_data & kOwnerMask))->io_complete(res);
}

void IoThread::loop() {
    tid_.store(pid_t(::syscall(SYS_gettid)), std::memory_order_release);
    ::pthread_setname_np(::pthread_self(), name_.c_str());
    // The poll interval is 20 us; the default 50 us timer slack would
    // stretch every poll wait to 70 us.
    ::prctl(PR_SET_TIMERSLACK, 1000ul);
    // Signals go to the main thread (which turns them into a stop), and to
    // vCPU threads (kicks); none belongs here.
    sigset_t set;
    sigfillset(&set);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS}) sigdelset(&set, s);
    ::pthread_sigmask(SIG_SETMASK, &set, nullptr);
    security::seccomp_install(security::ThreadKind::Io, name_);  // least privilege: only the calls an I/O thread makes

    for (auto& w : watches_) arm(*w);
    constexpr unsigned kBatch = 64;
    io_uring_cqe* cqes[kBatch];
    struct Done {
        uint64_t user_data;
        int32_t res;
    } done[kBatch];
    while (!stopping()) {
        int r;
        if (polling_) {
            __kernel_timespec ts{0, std::chrono::nanoseconds(kPollInterval).count()};
            io_uring_cqe* cqe = nullptr;
            r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
            if (r == -ETIME) {
                counters_.poll_timeouts.fetch_add(1, std::memory_order_relaxed);
                r = 0;
            }
        } else {
            r = io_uring_submit_and_wait(&ring_, 1);
        }
        counters_.loops.fetch_add(1, std::memory_order_relaxed);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            log_error("{}: io_uring_submit_and_wait: {}; I/O stops", name_, std::strerror(-r));
            break;
        }
        // Copy the batch out and give the slots back before running handlers,
        // which may produce more completions.
        for (;;) {
            unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
            if (n == 0) break;
            for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res};
            io_uring_cq_advance(&ring_, n);
            for (unsigned i = 0; i < n; ++i) dispatch(done[i].user_data, done[i].res);
            if (n < kBatch) break;
        }
        if (stopping()) break;
        polling_ = false;
        for (auto& hook : batch_hooks_) polling_ |= hook();
    }
    drain_on_stop();
}

// Every operation still in the kernel is cancelled and its completion
// awaited (bounded), so no device handler runs after stop() returns and no
// request slot is freed while the kernel still owns it.
void IoThread::drain_on_stop() {
    stopping_.store(true, std::memory_order_release);
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) {
        io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(s, 0);
        ++outstanding_;
    }
    io_uring_submit(&ring_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (outstanding_ > 0 && std::chrono::steady_clock::now() < deadline) {
        __kernel_timespec ts{0, 100 * 1000 * 1000};
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
        if (r == -ETIME || r == -EINTR) continue;
        if (r < 0) break;
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        dispatch(ud, res);
    }
    if (outstanding_ > 0)
        log_warn("{}: {} I/O operations still in the kernel at stop; the ring's teardown cancels them", name_,
                 outstanding_);
}

}  // namespace vireo
