// The test guest's ports (include/vireo/testguest_abi.h), one device over
// all three: registered at (TestPorts::kBase = VIREO_PORT_IDLE = 0x510,
// TestPorts::kWindowSize = 12), i.e. ports 0x510-0x51b.
//
//  offset 0 (VIREO_PORT_IDLE)      write N: the calling vCPU thread sleeps up
//                                  to N microseconds, waking at once when the
//                                  VM stops (the test guest's timed halt);
//  offset 4 (VIREO_PORT_TEST_EXIT) write N: stop, exit status N & 0xff;
//  offset 8 (VIREO_PORT_NULL)      any write: counted (relaxed atomic) and
//                                  ignored — the exit-cost benchmark.
// The value is the access's little-endian value (IDLE uses its low 32 bits,
// TEST_EXIT its low 8). Writes at other offsets are ignored and counted;
// all reads return zeros.
//
// The NULL port must stay a real exit: do not put it in a coalesced-PIO zone.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "vireo/testguest_abi.h"
#include "vmm/devices/device.h"

namespace vireo {

class TestPorts final : public Device {
public:
    static constexpr uint64_t kBase = VIREO_PORT_IDLE;
    static constexpr uint64_t kWindowSize = VIREO_PORT_NULL + 4 - VIREO_PORT_IDLE;
    static constexpr uint64_t kIdleOffset = VIREO_PORT_IDLE - kBase;
    static constexpr uint64_t kTestExitOffset = VIREO_PORT_TEST_EXIT - kBase;
    static constexpr uint64_t kNullOffset = VIREO_PORT_NULL - kBase;

    explicit TestPorts(StopSink& stop) : stop_(stop) {}

    std::string_view name() const override { return "test-ports"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint64_t null_writes() const { return null_writes_.load(std::memory_order_relaxed); }
    uint64_t idle_waits() const { return idle_waits_.load(std::memory_order_relaxed); }
    uint64_t ignored_writes() const { return ignored_.load(std::memory_order_relaxed); }

private:
    StopSink& stop_;
    std::atomic<uint64_t> null_writes_{0};
    std::atomic<uint64_t> idle_waits_{0};
    std::atomic<uint64_t> ignored_{0};
};

}  // namespace vireo
