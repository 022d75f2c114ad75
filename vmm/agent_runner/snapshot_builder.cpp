#include "vmm/agent_runner/snapshot_builder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "vmm/log.h"

namespace vireo::agent_runner {

namespace {

// A small /proc file in one read (no iostreams: this runs every tick).
std::optional<std::string> read_small(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, size_t(n));
        if (out.size() > (1u << 20)) break;
    }
    ::close(fd);
    return out;
}

std::vector<std::string_view> lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        out.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<uint64_t> to_u64(std::string_view s) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

std::optional<SchedStat> parse_schedstat(std::string_view text) {
    auto w = words(lines(text).empty() ? std::string_view() : lines(text)[0]);
    if (w.size() < 3) return std::nullopt;
    auto a = to_u64(w[0]), b = to_u64(w[1]), c = to_u64(w[2]);
    if (!a || !b || !c) return std::nullopt;
    return SchedStat{*a, *b, *c};
}

std::map<unsigned, uint64_t> parse_proc_stat(std::string_view text, long clock_ticks_per_s) {
    std::map<unsigned, uint64_t> out;
    if (clock_ticks_per_s <= 0) return out;
    for (auto line : lines(text)) {
        auto w = words(line);
        if (w.size() < 5 || w[0].size() < 4 || w[0].substr(0, 3) != "cpu") continue;
        auto cpu = to_u64(w[0].substr(3));
        if (!cpu) continue;  // the "cpu" total line
        // user nice system idle iowait irq softirq steal [guest guest_nice]:
        // guest time is already in user/nice, so it is not added again.
        uint64_t busy = 0;
        for (size_t i = 1; i < w.size() && i <= 8; ++i) {
            if (i == 4 || i == 5) continue;  // idle, iowait
            busy += to_u64(w[i]).value_or(0);
        }
        out[unsigned(*cpu)] = busy * (1'000'000'000ull / uint64_t(clock_ticks_per_s));
    }
    return out;
}

std::optional<double> parse_psi_avg10(std::string_view text, std::string_view kind) {
    for (auto line : lines(text)) {
        auto w = words(line);
        if (w.size() < 2 || w[0] != kind || w[1].substr(0, 6) != "avg10=") continue;
        std::string v(w[1].substr(6));
        char* end = nullptr;
        double d = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end) return std::nullopt;
        return d;
    }
    return std::nullopt;
}

std::optional<uint64_t> parse_meminfo(std::string_view text, std::string_view field) {
    for (auto line : lines(text)) {
        auto w = words(line);
        if (w.size() < 2 || w[0].size() != field.size() + 1 || w[0].substr(0, field.size()) != field || w[0].back() != ':')
            continue;
        auto v = to_u64(w[1]);
        if (!v) return std::nullopt;
        return w.size() >= 3 && w[2] == "kB" ? *v * 1024 : *v;
    }
    return std::nullopt;
}

SnapshotBuilder::SnapshotBuilder(pid_t pid) : pid_(pid > 0 ? pid : ::getpid()), ticks_per_s_(::sysconf(_SC_CLK_TCK)) {}

agent::Snapshot SnapshotBuilder::complete(HostPart part) {
    agent::Snapshot s = std::move(part.snapshot);

    // Host CPUs (the ones vireo may use) and memory.
    if (auto text = read_small("/proc/stat")) {
        auto busy = parse_proc_stat(*text, ticks_per_s_);
        for (unsigned cpu : part.allowed_cpus)
            if (auto it = busy.find(cpu); it != busy.end()) s.host_cpus.push_back({cpu, it->second});
    }
    if (auto text = read_small("/proc/meminfo")) {
        s.host_mem_total_bytes = parse_meminfo(*text, "MemTotal").value_or(0);
        s.host_mem_available_bytes = parse_meminfo(*text, "MemAvailable").value_or(0);
    }
    auto mem = read_small("/proc/pressure/memory"), cpu = read_small("/proc/pressure/cpu");
    if ((!mem || !cpu) && !psi_missing_logged_) {
        psi_missing_logged_ = true;
        log_info("controller: this kernel has no PSI (/proc/pressure/{}); host pressure reads as 0", !mem ? "memory" : "cpu");
    }
    if (mem) {
        s.pressure.memory_some_avg10 = parse_psi_avg10(*mem, "some").value_or(0);
        s.pressure.memory_full_avg10 = parse_psi_avg10(*mem, "full").value_or(0);
    }
    if (cpu) s.pressure.cpu_some_avg10 = parse_psi_avg10(*cpu, "some").value_or(0);

    // vCPU threads: on CPU, waiting, halted (the rest of their life).
    uint64_t now = s.timestamp_ns;
    for (size_t gi = 0; gi < s.guests.size(); ++gi)
        for (size_t vi = 0; vi < s.guests[gi].vcpus.size(); ++vi) {
            agent::VcpuSample& v = s.guests[gi].vcpus[vi];
            if (v.tid <= 0) continue;
            auto text = read_small(fmt::format("/proc/{}/task/{}/schedstat", pid_, v.tid));
            auto st = text ? parse_schedstat(*text) : std::nullopt;
            if (!st) continue;
            auto [it, fresh] = threads_.try_emplace(v.tid);
            ThreadBase& b = it->second;
            if (fresh) {
                b.first_ns = now;
                b.at_first = *st;
            }
            b.seen_ns = now;
            uint64_t alive = now - std::min(now, b.first_ns);
            uint64_t on_cpu = st->cpu_ns - std::min(st->cpu_ns, b.at_first.cpu_ns);
            uint64_t waited = st->wait_ns - std::min(st->wait_ns, b.at_first.wait_ns);
            uint64_t busy = on_cpu + waited;
            b.halt_ns = std::max(b.halt_ns, alive > busy ? alive - busy : 0);
            v.in_kvm_run_ns = alive;
            v.runq_wait_ns = waited;
            v.halt_wait_ns = b.halt_ns;
            bool bpf = gi < part.bpf_runq.size() && vi < part.bpf_runq[gi].size() && part.bpf_runq[gi][vi];
            if (!bpf) v.runq_waits = st->slices - std::min(st->slices, b.at_first.slices);
        }
    // Threads gone (a guest restarted or stopped): forget them.
    std::erase_if(threads_, [&](const auto& kv) { return kv.second.seen_ns != now; });
    return s;
}

}  // namespace vireo::agent_runner
