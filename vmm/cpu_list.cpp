#include "vmm/cpu_list.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace vireo {

namespace {
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

std::expected<unsigned, std::string> cpu_number(std::string_view s, std::string_view whole) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
        return std::unexpected(fmt::format("CPU list '{}': '{}' is not a CPU number", whole, s));
    if (v >= kMaxCpus) return std::unexpected(fmt::format("CPU list '{}': CPU {} is above {}", whole, v, kMaxCpus - 1));
    return v;
}
}  // namespace

std::expected<CpuList, std::string> parse_cpu_list(std::string_view text) {
    CpuList out;
    std::string_view rest = trim(text);
    if (rest.empty()) return std::unexpected(std::string("CPU list is empty"));
    while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (item.empty()) return std::unexpected(fmt::format("CPU list '{}' has an empty item", text));
        size_t dash = item.find('-');
        if (dash == std::string_view::npos) {
            auto v = cpu_number(item, text);
            if (!v) return std::unexpected(v.error());
            out.push_back(*v);
            continue;
        }
        auto lo = cpu_number(trim(item.substr(0, dash)), text);
        if (!lo) return std::unexpected(lo.error());
        auto hi = cpu_number(trim(item.substr(dash + 1)), text);
        if (!hi) return std::unexpected(hi.error());
        if (*hi < *lo) return std::unexpected(fmt::format("CPU list '{}': range {} runs backwards", text, item));
        for (unsigned c = *lo; c <= *hi; ++c) out.push_back(c);
    }
    return normalize_cpu_list(std::move(out));
}

std::string format_cpu_list(const CpuList& cpus) {
    std::string s;
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (!s.empty()) s += ',';
        s += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
        i = j + 1;
    }
    return s;
}

CpuList normalize_cpu_list(CpuList cpus) {
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    return cpus;
}

std::expected<CpuList, std::string> online_cpus() {
    std::ifstream f("/sys/devices/system/cpu/online");
    std::string line;
    if (!f || !std::getline(f, line)) return std::unexpected(std::string("cannot read /sys/devices/system/cpu/online"));
    return parse_cpu_list(line);
}

std::expected<CpuList, std::string> thread_affinity(pid_t tid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(tid, sizeof set, &set) != 0)
        return std::unexpected(fmt::format("sched_getaffinity({}): {}", tid, std::strerror(errno)));
    CpuList out;
    for (unsigned c = 0; c < CPU_SETSIZE && c < kMaxCpus; ++c)
        if (CPU_ISSET(c, &set)) out.push_back(c);
    return out;
}

std::expected<void, std::string> set_thread_affinity(pid_t tid, const CpuList& cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned c : cpus)
        if (c < CPU_SETSIZE) CPU_SET(c, &set);
    if (::sched_setaffinity(tid, sizeof set, &set) != 0)
        return std::unexpected(
            fmt::format("sched_setaffinity({}, {}): {}", tid, format_cpu_list(cpus), std::strerror(errno)));
    return {};
}

}  // namespace vireo
