// The seam through which the controller runs per-guest work in parallel.
// The controller never names a thread library: the live vireo binary is
// linked fully static and runs the serial default, while tools/replay and
// the benchmark pass agent/tbb_executor.h's TBB version.
#pragma once

#include <cstddef>
#include <functional>

namespace vireo::agent {

// Calls body(i) for every i in [0, n), in any order and on any threads;
// returns when all calls have returned. Each body touches only item i's
// state, so any order gives the same result.
using ParallelFor = std::function<void(size_t n, const std::function<void(size_t)>& body)>;

inline ParallelFor serial_for() {
    return [](size_t n, const std::function<void(size_t)>& body) {
        for (size_t i = 0; i < n; ++i) body(i);
    };
}

}  // namespace vireo::agent
