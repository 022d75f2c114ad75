// Telemetry traces: snapshots as JSON lines, written by `vireoctl record`
// (or `replay --write-trace`) and replayed by tools/replay. The first line
// is the header {"vireo_trace": 1}; each further line is one Snapshot:
//
//   {"t_ns": 1000000000, "mode": "auto",
//    "limits": {"balloon_step_percent": 5, "balloon_interval_s": 10, "balloon_floor_mib": 64, "pin_interval_s": 60},
//    "host": {"cpus": [{"cpu": 0, "busy_ns": 123}], "mem_total_bytes": 0, "mem_available_bytes": 0,
//             "psi": {"memory_some_avg10": 0.0, "memory_full_avg10": 0.0, "cpu_some_avg10": 0.0}},
//    "guests": [{"name": "web", "ram_bytes": 268435456, "class": "unknown",
//                "control": {"mode": null, "pin_held": false, "balloon_held": false},
//                "balloon": null | {"target_bytes": 0, "actual_bytes": 0, "deflate_on_oom_events": 0,
//                                   "stats": {"swap_in": 0, "available_memory": 0, ...}},
//                "vcpus": [{"vcpu": 0, "tid": 4242, "pin": null | [1], "in_kvm_run_ns": 0, "runq_wait_ns": 0,
//                           "runq_waits": 0, "halt_wait_ns": 0, "exits": 0}]}]}
//
// A trace is user input: parsing is strict (unknown keys, wrong types,
// values out of range are errors) and every error is one line that says
// which line and which field.
#pragma once

#include <expected>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "agent/snapshot.h"

namespace vireo::agent {

inline constexpr int kTraceVersion = 1;

std::string trace_header();
std::string to_trace_line(const Snapshot& snapshot);
// One snapshot line; the error names the field but not the line number.
std::expected<Snapshot, std::string> parse_trace_line(std::string_view line);

// A whole trace: the header, then snapshots with growing timestamps. Empty
// lines are allowed. Errors: "line N: ...".
std::expected<std::vector<Snapshot>, std::string> read_trace(std::istream& in);
std::expected<std::vector<Snapshot>, std::string> read_trace_file(const std::string& path);
void write_trace(std::ostream& out, const std::vector<Snapshot>& snapshots);

}  // namespace vireo::agent
