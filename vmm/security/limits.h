// Guest-controlled quantities that cost host memory or time, and how often
// a guest ran into their bounds. Each bound is enforced where the
// quantity is read (the device models); this gathers the counters of one
// guest's devices for the metrics (vireo_guest_limit_hits_total) -- the
// same counters --stats prints per device. The README lists the bounds.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vireo {

class VirtioDevices;

// (limit name, times hit), in a fixed order, every name present.
std::vector<std::pair<std::string, uint64_t>> guest_limit_hits(const VirtioDevices* devices);

}  // namespace vireo
