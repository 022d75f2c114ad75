// The learned controller's thread in vireo: every tick it
// gathers a snapshot (agent/snapshot.h), runs agent::Controller::tick, and
// submits each decision through the actuator (vireo/actions.h's Actuator)
// -- the same door as the control socket, so apply() checks mode, held levers and limits again,
// logs the decision (inputs, prediction and reason in Origin.reason) and
// publishes it as an `action` event.
//
// Threads and handoffs. Host state lives on the host's loop thread, so the
// snapshot is gathered there: the controller posts a task that copies what
// it needs (gather_from_host) into a mailbox -- a mutex and a condition
// variable, one slot -- and waits for it, then reads /proc itself
// (SnapshotBuilder::complete). A TBB concurrent queue would be the obvious
// handoff; vireo is linked fully static and Debian has no static TBB
// (agent/tbb_executor.h), and a one-slot handoff per second needs no more.
// Decisions go back through Actuator::submit (a posted task per action).
//
// Cheap when off: the posted task only looks at the modes, and a tick with
// every guest off reads nothing else and runs no model. Stopped (joined)
// first thing in ~Host; a tick waiting on the loop gives up when stopped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/balloon_policy.h"
#include "agent/pinning_policy.h"
#include "vireo/actions.h"
#include "vmm/agent_runner/snapshot_builder.h"

namespace vireo::agent_runner {

// How the thread reaches the host: `post` runs a task on the host's loop
// thread, where `gather` copies the host's state; decisions go to `actuator`.
struct HostAccess {
    std::function<void(std::function<void()>)> post;
    std::function<HostPart()> gather;
    Actuator& actuator;
};

struct AgentThreadOptions {
    std::chrono::milliseconds tick{1000};
    agent::BalloonPolicyParams balloon;
    agent::PinningPolicyParams pinning;
};

struct TickCost {
    uint64_t ticks = 0;       // ticks that ran the models
    uint64_t decisions = 0;
    uint64_t total_ns = 0;    // in Controller::tick
    uint64_t max_ns = 0;
    uint64_t gather_ns = 0;   // snapshot (loop + /proc), total
};

class AgentThread {
public:
    AgentThread(HostAccess host, AgentThreadOptions options);
    ~AgentThread();  // stop()
    AgentThread(const AgentThread&) = delete;
    AgentThread& operator=(const AgentThread&) = delete;

    // Wakes the thread and joins it; idempotent.
    void stop();

private:
    void run();
    void loop();
    bool sleep_for(std::chrono::nanoseconds d);  // false: stopping

    HostAccess host_;
    AgentThreadOptions options_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    TickCost cost_;
    std::thread thread_;
};

}  // namespace vireo::agent_runner
