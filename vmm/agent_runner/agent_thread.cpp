#include "vmm/agent_runner/agent_thread.h"

#include <pthread.h>

#include <future>
#include <memory>

#include "agent/controller.h"
#include "vmm/log.h"
#include "vmm/security/seccomp_filters.h"

namespace vireo::agent_runner {

namespace {

// The loop thread's half of a tick, handed over in one slot.
struct Mailbox {
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<HostPart> part;
};

constexpr auto kWaitSlice = std::chrono::milliseconds(50);

uint64_t ns_since(std::chrono::steady_clock::time_point t0) {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

AgentThread::AgentThread(HostAccess host, AgentThreadOptions options)
    : host_(std::move(host)), options_(std::move(options)), thread_([this] { run(); }) {}

AgentThread::~AgentThread() { stop(); }

void AgentThread::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool AgentThread::sleep_for(std::chrono::nanoseconds d) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void AgentThread::run() {
    ::pthread_setname_np(::pthread_self(), "controller");
    security::seccomp_install(security::ThreadKind::Controller, "controller");
    loop();
    // What the controller cost this process (its budget: <= 1 % of a core).
    if (cost_.ticks)
        log_info("controller: {} ticks, {} decisions; Controller::tick {:.1f} us mean, {:.1f} us max; snapshot {:.1f} us mean",
                 cost_.ticks, cost_.decisions, double(cost_.total_ns) / double(cost_.ticks) / 1e3, double(cost_.max_ns) / 1e3,
                 double(cost_.gather_ns) / double(cost_.ticks) / 1e3);
}

void AgentThread::loop() {
    agent::Controller ctl(std::make_unique<agent::PinningPolicy>(options_.pinning),
                          std::make_unique<agent::BalloonPolicy>(options_.balloon), agent::serial_for());
    SnapshotBuilder builder;
    auto stopping = [this] {
        std::lock_guard lock(mutex_);
        return stopping_;
    };
    auto next = std::chrono::steady_clock::now();
    for (;;) {
        next += options_.tick;
        auto now = std::chrono::steady_clock::now();
        if (next < now) next = now + options_.tick;  // a late tick is not made up for: counters are cumulative
        if (!sleep_for(next - now)) break;

        // 1. The loop thread copies the host's state.
        auto t0 = std::chrono::steady_clock::now();
        auto box = std::make_shared<Mailbox>();
        host_.post([box, gather = host_.gather] {
            HostPart part = gather();
            std::lock_guard lock(box->mutex);
            box->part = std::move(part);
            box->cv.notify_one();
        });
        std::optional<HostPart> part;
        while (!part) {
            std::unique_lock lock(box->mutex);
            if (box->cv.wait_for(lock, kWaitSlice, [&] { return box->part.has_value(); })) part = std::move(box->part);
            lock.unlock();
            if (!part && stopping()) return;
        }
        if (!part->any_on) continue;

        // 2. This thread adds the kernel's figures, then the models run.
        agent::Snapshot snap = builder.complete(std::move(*part));
        cost_.gather_ns += ns_since(t0);
        auto t1 = std::chrono::steady_clock::now();
        agent::Decisions decisions = ctl.tick(snap);
        uint64_t tick_ns = ns_since(t1);
        ++cost_.ticks;
        cost_.total_ns += tick_ns;
        cost_.max_ns = std::max(cost_.max_ns, tick_ns);
        cost_.decisions += decisions.size();
        log_debug("controller: tick {}: {} guests, {} decisions, {:.0f} us", cost_.ticks, snap.guests.size(), decisions.size(),
                  double(tick_ns) / 1e3);

        // 3. Each decision through the actuator, with everything it was based on.
        std::vector<std::future<ActionResult>> results;
        for (const agent::Decision& d : decisions) {
            Origin o = d.origin();
            if (!d.inputs.empty()) o.reason += "; inputs: " + d.inputs;
            results.push_back(host_.actuator.submit(d.action, std::move(o)));
        }
        for (auto& f : results)
            while (f.wait_for(kWaitSlice) != std::future_status::ready)
                if (stopping()) return;
    }
}

}  // namespace vireo::agent_runner
