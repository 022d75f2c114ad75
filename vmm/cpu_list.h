// Host CPU sets as people and the kernel write them ("0-3,6"), and the
// thread affinity calls pinning needs. A CpuList is sorted and unique.
#pragma once

#include <sys/types.h>

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace vireo {

using CpuList = std::vector<unsigned>;

// CPU numbers a cpu_set_t can hold; a larger number is out of range.
inline constexpr unsigned kMaxCpus = 1024;

// "0-3,6" (the kernel's cpulist format; spaces allowed around items).
std::expected<CpuList, std::string> parse_cpu_list(std::string_view text);
std::string format_cpu_list(const CpuList& cpus);
// Sorts and removes duplicates.
CpuList normalize_cpu_list(CpuList cpus);

// CPUs the kernel has online (/sys/devices/system/cpu/online).
std::expected<CpuList, std::string> online_cpus();
// CPUs a thread may run on (sched_getaffinity; tid 0 = the caller).
std::expected<CpuList, std::string> thread_affinity(pid_t tid);
std::expected<void, std::string> set_thread_affinity(pid_t tid, const CpuList& cpus);

}  // namespace vireo
