// ParallelFor on TBB, for tools/replay, tests and benchmarks only.
// The vireo binary is linked fully -static (its own resident memory <= 4 MiB
// is a published goal) and Debian ships TBB only as a shared library:
// linking it made vireo dynamic and took its RSS from 3.2 MiB to 6.4 MiB.
// So nothing vireo links may reference this file; libagent.a is an archive,
// and the linker leaves tbb_executor.o out as long as vireo never calls it.
#pragma once

#include "agent/executor.h"

namespace vireo::agent {

// tbb::parallel_for over [0, n), one task per item (per-guest work is
// coarse enough that TBB's default partitioner needs no tuning).
ParallelFor tbb_parallel_for();

}  // namespace vireo::agent
