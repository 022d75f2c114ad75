#include "vmm/devices/test_ports.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>

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
            // The protocol's value is 32 bits (at most ~71 minutes): ignoring
            // wider bits keeps every deadline far from clock overflow.
            uint32_t us = uint32_t(load_le(data));
            stop_.wait_for_stop(std::chrono::microseconds(us));
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
