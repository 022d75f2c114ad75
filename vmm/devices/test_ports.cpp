#include "vmm/devices/test_ports.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <limits>

namespace vireo {

void TestPorts::read(uint64_t, std::span<uint8_t> data) { std::memset(data.data(), 0, data.size()); }

void TestPorts::write(uint64_t offset, std::span<const uint8_t> data) {
    switch (offset) {
        case kNullOffset:
            // The hot path of the exit benchmark: one relaxed increment.
            null_writes_.fetch_add(1, std::memory_order_relaxed);
            return;
        case kIdleOffset: {
            idle_waits_.fetch_add(1, std::memory_order_relaxed);
            // A 64-bit access could ask for 2^64-1 µs; clamp (to ~292 years)
            // so the conversion to nanoseconds cannot overflow.
            uint64_t us = load_le(data);
            constexpr uint64_t kMaxUs = uint64_t(std::numeric_limits<int64_t>::max()) / 1000;
            stop_.wait_for_stop(std::chrono::microseconds(int64_t(us < kMaxUs ? us : kMaxUs)));
            return;
        }
        case kTestExitOffset: {
            uint64_t value = load_le(data);
            int code = int(value & 0xff);
            stop_.request_stop({StopReason::TestExit, code,
                                fmt::format("test-exit port: guest wrote {:#x} (exit status {})", value, code)});
            return;
        }
        default:
            ignored_.fetch_add(1, std::memory_order_relaxed);
            return;
    }
}

}  // namespace vireo
