// The StopSink of one guest, a latch: the first stop request wins and is
// kept (later ones are only logged); it wakes whoever waits for it (the
// main loop through an eventfd, idling vCPUs through a condition variable).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "vmm/devices/device.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

class StopLatch final : public StopSink {
public:
    StopLatch();
    void request_stop(StopRequest request) override;
    bool wait_for_stop(std::chrono::nanoseconds timeout) override;
    bool stop_requested() const override { return stopped_.load(std::memory_order_acquire); }

    // Readable (poll) once a stop was requested.
    int eventfd() const { return eventfd_.get(); }
    std::optional<StopRequest> request() const;

private:
    std::atomic<bool> stopped_{false};
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<StopRequest> request_;
    UniqueFd eventfd_;
};

// The process exit status for a stop (include/vireo/exit_status.h).
int exit_status_for(const StopRequest& request);

}  // namespace vireo
