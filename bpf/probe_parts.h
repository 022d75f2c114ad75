// Each probe's part of the loader, in the file named after it beside its
// programs (bpf/vcpu_time.cpp with bpf/vcpu_time.bpf.c, ...): sizing its
// maps before load, zeroing its counters, and adding them into telemetry
// records. probe_set.cpp does what every probe shares: choosing the
// programs this kernel can run, loading, attaching, the thread filter.
//
// `runs`: whether this skeleton instance runs the probe; maps of a probe it
// does not run shrink to one entry.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "bpf/vireo.skel.h"
#include "vireo/telemetry.h"

namespace vireo::probe_parts {

// vcpu_time.cpp
void size_vcpu_time(vireo_bpf& s, bool runs, uint32_t vcpus);
void zero_vcpu_time(vireo_bpf& s);
void read_vcpu_time(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out);

// kernel_exits.cpp
void size_kernel_exits(vireo_bpf& s, bool runs, uint32_t vcpus);
void zero_kernel_exits(vireo_bpf& s);
void read_kernel_exits(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out);

// runqueue.cpp
void size_runqueue(vireo_bpf& s, bool runs, uint32_t vcpus);
void zero_runqueue(vireo_bpf& s);
void read_runqueue(const vireo_bpf& s, unsigned slot, vireo_vcpu_telemetry& out);

// blk.cpp
void size_blk(vireo_bpf& s, bool runs, uint32_t inflight);
void zero_blk(vireo_bpf& s);
// A device's QueueNotify address and GSI (nullopt: no interrupt stage).
std::expected<void, std::string> add_blk_device(vireo_bpf& s, unsigned device, uint64_t notify_gpa,
                                                std::optional<uint32_t> gsi);
void read_blk(const vireo_bpf& s, unsigned device, vireo_blk_telemetry& out);

}  // namespace vireo::probe_parts
