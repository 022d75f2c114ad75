#include "vmm/stop_latch.h"

#include <sys/eventfd.h>

#include "vireo/exit_status.h"
#include "vmm/log.h"

namespace vireo {

StopLatch::StopLatch() : eventfd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void StopLatch::request_stop(StopRequest request) {
    if (request.at == std::chrono::steady_clock::time_point{}) request.at = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mutex_);
        if (request_) {
            log_debug("stop ({}) after stop ({}) already requested: ignored", to_string(request.reason),
                      to_string(request_->reason));
            return;
        }
        request_ = std::move(request);
        stopped_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    uint64_t one = 1;
    ssize_t ignored = ::write(eventfd_.get(), &one, sizeof one);
    (void)ignored;
}

bool StopLatch::wait_for_stop(std::chrono::nanoseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return request_.has_value(); });
}

std::optional<StopRequest> StopLatch::request() const {
    std::lock_guard lock(mutex_);
    return request_;
}

int exit_status_for(const StopRequest& request) {
    switch (request.reason) {
        case StopReason::PowerOff:
        case StopReason::Reset:
        case StopReason::Operator: return VIREO_EXIT_OK;
        case StopReason::Panic: return VIREO_EXIT_GUEST_PANIC;
        case StopReason::TripleFault: return VIREO_EXIT_TRIPLE_FAULT;
        case StopReason::KvmError: return VIREO_EXIT_KVM_ERROR;
        case StopReason::Hang:
        case StopReason::Watchdog: return VIREO_EXIT_GUEST_HUNG;
        case StopReason::TestExit: return request.code & 0xff;
        case StopReason::HostError: return VIREO_EXIT_HOST_ERROR;
    }
    return VIREO_EXIT_HOST_ERROR;
}

}  // namespace vireo
