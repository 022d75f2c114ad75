// What the control protocol says about a guest: its summary (`list`), its
// vCPU threads with their figures (`vcpus`, `metrics`), its balloon and its
// disks. JSON built on the control thread from the guest's Machine, the
// kernel's view of each thread (/proc) and the telemetry records.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "vireo/telemetry.h"
#include "vmm/guest.h"

namespace vireo {

nlohmann::json guest_summary_json(const Guest& g, const Supervision& sup);
// The restart supervisor's view of a guest: policy, back-off, history,
// hang detection, watchdog.
nlohmann::json restart_json(const Guest& g, const Supervision& sup);
// Per vCPU; `with_histograms` adds the raw log2 buckets (vireoctl top
// takes differences between two snapshots for interval percentiles).
nlohmann::json vcpus_json(Guest& g, const std::optional<Telemetry>& t, bool with_histograms);
// null if the guest has no balloon.
nlohmann::json balloon_json(Guest& g);
nlohmann::json disks_json(Guest& g, const std::optional<Telemetry>& t);
nlohmann::json hist_json(const vireo_hist& h);

}  // namespace vireo
