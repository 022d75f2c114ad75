// How often a vCPU left KVM_RUN, by exit reason: written by the vCPU thread
// (relaxed), read by the probes' telemetry report and the metrics. Its own
// header so those readers need neither the runner nor the machine.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vireo {

// Counted by the vCPU thread only (relaxed stores); read by anyone.
struct VcpuExitCounters {
    static constexpr size_t kReasons = 64;
    std::array<std::atomic<uint64_t>, kReasons> by_reason{};  // indexed by KVM_EXIT_*
    std::atomic<uint64_t> runs{0};                            // KVM_RUN calls
    uint64_t total() const {
        uint64_t t = 0;
        for (const auto& c : by_reason) t += c.load(std::memory_order_relaxed);
        return t;
    }
};

}  // namespace vireo
