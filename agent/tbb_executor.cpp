#include "agent/tbb_executor.h"

#include <tbb/parallel_for.h>

namespace vireo::agent {

ParallelFor tbb_parallel_for() {
    return [](size_t n, const std::function<void(size_t)>& body) {
        tbb::parallel_for(size_t(0), n, [&](size_t i) { body(i); });
    };
}

}  // namespace vireo::agent
