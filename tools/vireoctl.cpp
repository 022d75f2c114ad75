// vireoctl: the control socket's client. One subcommand per request, tables
// for people, --json for scripts (the response's "result" as JSON), exit
// status 0 on success, 1 on an error response, 2 on bad usage, 3 if vireo
// cannot be reached. `vireoctl top` is a live per-guest, per-vCPU view.
//
// The protocol it speaks is README.md, "Control protocol".
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/trace.h"
#include "vireo/telemetry.h"
#include "vireo/version.h"
#include "vmm/agent_runner/snapshot_builder.h"
#include "vmm/cpu_list.h"
#include "vmm/guest_config.h"
#include "vmm/control/client.h"
#include "vmm/control/request_table.h"
#include "vmm/control/socket_path.h"
#include "vmm/metrics/log2_hist.h"

namespace {

using json = nlohmann::json;
using vireo::control::ControlClient;

constexpr int kExitError = 1, kExitUsage = 2, kExitUnreachable = 3;

// ------------------------------------------------------------ formatting

std::string str(const json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
    if (v.is_number_float()) return fmt::format("{:.1f}", v.get<double>());
    return v.dump();
}

std::string bytes(const json& v) {
    if (!v.is_number()) return "-";
    double b = v.get<double>();
    if (b >= double(1ull << 30)) return fmt::format("{:.1f}G", b / double(1ull << 30));
    if (b >= double(1ull << 20)) return fmt::format("{:.0f}M", b / double(1ull << 20));
    if (b >= 1024) return fmt::format("{:.0f}K", b / 1024);
    return fmt::format("{:.0f}", b);
}

std::string duration_ns(std::optional<uint64_t> ns) {
    if (!ns) return "-";
    if (*ns == UINT64_MAX) return ">1s";
    double v = double(*ns);
    if (v >= 1e9) return fmt::format("{:.1f}s", v / 1e9);
    if (v >= 1e6) return fmt::format("{:.1f}ms", v / 1e6);
    if (v >= 1e3) return fmt::format("{:.0f}us", v / 1e3);
    return fmt::format("{:.0f}ns", v);
}

std::string rate(double per_s) {
    if (per_s >= 1e6) return fmt::format("{:.1f}M", per_s / 1e6);
    if (per_s >= 1e3) return fmt::format("{:.1f}k", per_s / 1e3);
    return fmt::format("{:.0f}", per_s);
}

// A table whose columns are as wide as their widest cell.
struct Table {
    std::vector<std::string> head;
    std::vector<std::vector<std::string>> rows;
    std::string render() const {
        std::vector<size_t> w(head.size());
        for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
        for (const auto& r : rows)
            for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
        auto line = [&](const std::vector<std::string>& r) {
            std::string s;
            for (size_t i = 0; i < w.size(); ++i) {
                std::string cell = i < r.size() ? r[i] : "";
                s += i + 1 == w.size() ? cell : fmt::format("{:<{}}  ", cell, w[i]);
            }
            while (!s.empty() && s.back() == ' ') s.pop_back();
            return s + "\n";
        };
        std::string out = line(head);
        for (const auto& r : rows) out += line(r);
        return out;
    }
};

// ------------------------------------------------------------ one request

struct Ctl {
    std::string control;
    bool json_out = false;
    std::string reason;

    std::expected<ControlClient, std::string> connect() const {
        std::string path = control;
        if (path.empty()) {
            auto found = vireo::control::find_control_socket();
            if (!found) return std::unexpected(found.error());
            path = *found;
        }
        return ControlClient::connect(path);
    }

    // Sends one request; prints the error (exit 1) or returns the result.
    std::optional<json> call(json request, int& status) const {
        auto c = connect();
        if (!c) {
            std::fprintf(stderr, "vireoctl: %s\n", c.error().c_str());
            status = kExitUnreachable;
            return std::nullopt;
        }
        if (!reason.empty()) request["reason"] = reason;
        auto r = c->call(std::move(request));
        if (!r) {
            std::fprintf(stderr, "vireoctl: %s\n", r.error().c_str());
            status = kExitUnreachable;
            return std::nullopt;
        }
        if (r->contains("error")) {
            const json& e = (*r)["error"];
            if (json_out) std::cout << r->dump() << "\n";
            std::fprintf(stderr, "vireoctl: error: %s: %s\n", str(e.value("code", json())).c_str(),
                         str(e.value("message", json())).c_str());
            status = kExitError;
            return std::nullopt;
        }
        status = 0;
        return (*r)["result"];
    }
};

void print_list(const json& r) {
    Table t{{"NAME", "STATE", "CPUS", "MEM", "UPTIME", "RESTARTS", "PINNED", "BALLOON", "LAST STOP"}, {}};
    for (const auto& g : r["guests"]) {
        std::string up = g["uptime_s"].is_number() ? fmt::format("{:.0f}s", g["uptime_s"].get<double>()) : "-";
        std::string last = g["last_stop"].is_null() ? "-" : str(g["last_stop"]["reason"]);
        std::string balloon = g["balloon"].is_null() ? "-" : bytes(g["balloon"]["target_bytes"]);
        t.rows.push_back({str(g["name"]), str(g["state"]), str(g["cpus"]), bytes(g["mem_bytes"]), up, str(g["restarts"]),
                          str(g["pinned_vcpus"]), balloon, last});
    }
    std::cout << t.render();
}

void print_vcpus(const json& r) {
    Table t{{"VCPU", "THREAD", "TID", "HOST CPU", "ALLOWED", "PINNED", "STATE", "RUNS", "EXITS", "RUNQ P99"}, {}};
    for (const auto& v : r["vcpus"]) {
        std::string exits;
        if (v.contains("exits"))
            for (auto it = v["exits"].begin(); it != v["exits"].end(); ++it)
                exits += fmt::format("{}{}={}", exits.empty() ? "" : " ", it.key(), it.value().get<uint64_t>());
        std::string runq = "-";
        if (v.contains("runq_wait") && v["runq_wait"].is_object()) {
            const json& p = v["runq_wait"]["p99_ns"];
            runq = duration_ns(p.is_number() ? std::optional<uint64_t>(p.get<uint64_t>()) : std::nullopt);
        }
        t.rows.push_back({str(v["vcpu"]), str(v["thread"]), str(v["tid"]), str(v["host_cpu"]), str(v["cpus_allowed"]),
                          str(v["pinned"]), v.value("parked", false) ? "paused" : str(v["thread_state"]),
                          str(v.value("runs", json())), exits.empty() ? "-" : exits, runq});
    }
    std::cout << "guest " << str(r["guest"]) << " (" << str(r["state"]) << ")\n" << t.render();
}

void print_balloon(const json& r) {
    const json& b = r["balloon"];
    std::cout << fmt::format("guest {}: balloon target {}, actual {}, guest RAM {}\n", str(r["guest"]), bytes(b["target_bytes"]),
                             bytes(b.value("actual_bytes", json())), bytes(b["ram_bytes"]));
    if (b.contains("stats") && b["stats"].is_object()) {
        Table t{{"STAT", "VALUE"}, {}};
        for (auto it = b["stats"].begin(); it != b["stats"].end(); ++it) t.rows.push_back({it.key(), str(it.value())});
        std::cout << t.render();
    }
}

void print_disks(const json& r) {
    Table t{{"#", "PATH", "SIZE", "RO", "SERIAL", "REQUESTS", "READ", "WRITTEN", "ERRORS", "P99"}, {}};
    for (const auto& d : r["disks"]) {
        const json& c = d["counters"];
        std::string p99 = "-";
        if (d["latency"].is_object()) {
            const json& p = d["latency"]["submit_to_complete"]["p99_ns"];
            p99 = duration_ns(p.is_number() ? std::optional<uint64_t>(p.get<uint64_t>()) : std::nullopt);
        }
        t.rows.push_back({str(d["index"]), str(d["path"]), bytes(d["size_bytes"]), str(d["read_only"]), str(d["serial"]),
                          c.is_object() ? str(c["requests"]) : "-", c.is_object() ? bytes(c["bytes_read"]) : "-",
                          c.is_object() ? bytes(c["bytes_written"]) : "-", c.is_object() ? str(c["io_errors"]) : "-", p99});
    }
    std::cout << "guest " << str(r["guest"]) << "\n" << t.render();
}

void print_decisions(const json& r) {
    Table t{{"#", "TIME", "SOURCE", "WHO", "ACTION", "OUTCOME", "UNDO", "REASON / ERROR"}, {}};
    for (const auto& d : r["decisions"]) {
        json a = d["action"];
        std::string what = str(a["kind"]);
        if (a.contains("guest")) what += " " + str(a["guest"]);
        for (auto it = a.begin(); it != a.end(); ++it)
            if (it.key() != "kind" && it.key() != "guest") what += fmt::format(" {}={}", it.key(), it.value().dump());
        std::string undo = d["undone_by"].is_number() ? fmt::format("undone by #{}", d["undone_by"].get<uint64_t>())
                           : d["undo"].empty()        ? "-"
                                                      : "yes";
        std::string note = d.contains("error") ? str(d["error"]["code"]) + ": " + str(d["error"]["message"]) : str(d["reason"]);
        t.rows.push_back({str(d["seq"]), str(d["time"]), str(d["source"]), str(d["who"]), what, str(d["outcome"]), undo, note});
    }
    std::cout << t.render();
    if (r.value("evicted", 0) > 0) std::cout << fmt::format("({} older decisions were evicted)\n", r["evicted"].get<uint64_t>());
}

void print_controller(const json& r) {
    std::cout << "mode: " << str(r["mode"]) << "\nlimits:";
    for (auto it = r["limits"].begin(); it != r["limits"].end(); ++it) std::cout << " " << it.key() << "=" << str(it.value());
    std::cout << "\n";
    Table t{{"GUEST", "MODE", "EFFECTIVE", "PIN HELD", "BALLOON HELD"}, {}};
    for (auto it = r["guests"].begin(); it != r["guests"].end(); ++it)
        t.rows.push_back({it.key(), str(it.value()["mode"]), str(it.value()["effective_mode"]), str(it.value()["held"]["pin"]),
                          str(it.value()["held"]["balloon"])});
    std::cout << t.render();
}

// ------------------------------------------------------------ top

volatile sig_atomic_t g_quit = 0;
void on_quit(int) { g_quit = 1; }

// Raw, no-echo input and the alternate screen while top runs; restored on
// every way out (q, Ctrl-C, SIGTERM, an error) by the destructor.
class TerminalMode {
public:
    explicit TerminalMode(bool tty) : tty_(tty) {
        if (!tty_) return;
        if (::tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios raw = saved_;
            raw.c_lflag &= tcflag_t(~(ICANON | ECHO));
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
            have_saved_ = true;
        }
        std::fputs("\x1b[?1049h\x1b[?25l", stdout);
        std::fflush(stdout);
    }
    ~TerminalMode() { restore(); }
    TerminalMode(const TerminalMode&) = delete;
    TerminalMode& operator=(const TerminalMode&) = delete;
    void restore() {
        if (!tty_) return;
        tty_ = false;
        std::fputs("\x1b[?25h\x1b[?1049l", stdout);
        std::fflush(stdout);
        if (have_saved_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }

private:
    bool tty_;
    bool have_saved_ = false;
    termios saved_{};
};

struct VcpuKey {
    std::string guest;
    unsigned vcpu;
    auto operator<=>(const VcpuKey&) const = default;
};

std::optional<uint64_t> quantile(const json& buckets_now, const json* buckets_before, double q) {
    if (!buckets_now.is_array() || buckets_now.size() != VIREO_HIST_BUCKETS) return std::nullopt;
    vireo_hist now{}, before{};
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) now.bucket[i] = buckets_now[i].get<uint64_t>();
    if (buckets_before && buckets_before->is_array() && buckets_before->size() == VIREO_HIST_BUCKETS)
        for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) before.bucket[i] = (*buckets_before)[i].get<uint64_t>();
    return vireo::hist_quantile_ns(vireo::hist_delta(now, before), q);
}

const json* find_path(const json& j, std::initializer_list<const char*> path) {
    const json* cur = &j;
    for (const char* k : path) {
        if (!cur->is_object() || !cur->contains(k)) return nullptr;
        cur = &(*cur)[k];
    }
    return cur;
}

std::string render_top(const json& now, const json* before, double interval_s) {
    std::map<VcpuKey, const json*> prev;
    std::map<std::string, const json*> prev_guest;
    if (before)
        for (const auto& g : (*before)["guests"]) {
            prev_guest[g["name"].get<std::string>()] = &g;
            for (const auto& v : g["vcpus"]) prev[{g["name"].get<std::string>(), v["vcpu"].get<unsigned>()}] = &v;
        }
    if (before && now.contains("monotonic_ns") && before->contains("monotonic_ns"))
        interval_s = double(now["monotonic_ns"].get<int64_t>() - (*before)["monotonic_ns"].get<int64_t>()) / 1e9;
    if (interval_s <= 0) interval_s = 1;

    Table t{{"GUEST/VCPU", "STATE", "HOST CPU", "PIN", "CPU%", "GUEST%", "EXITS/S", "RUNQ P50", "RUNQ P99", "BALLOON", "IO P99"}, {}};
    for (const auto& g : now["guests"]) {
        std::string name = g["name"].get<std::string>();
        std::string balloon = "-";
        if (g["balloon"].is_object())
            balloon = fmt::format("{}/{}", bytes(g["balloon"].value("actual_bytes", json())), bytes(g["balloon"]["target_bytes"]));
        std::optional<uint64_t> io_p99;
        const json* pg = prev_guest.count(name) ? prev_guest[name] : nullptr;
        for (const auto& d : g["disks"]) {
            const json* b = find_path(d, {"latency", "submit_to_complete", "buckets"});
            if (!b) continue;
            const json* pb = nullptr;
            if (pg)
                for (const auto& pd : (*pg)["disks"])
                    if (pd["index"] == d["index"]) pb = find_path(pd, {"latency", "submit_to_complete", "buckets"});
            auto q = quantile(*b, pb, 0.99);
            if (q && (!io_p99 || *q > *io_p99)) io_p99 = q;
        }
        t.rows.push_back({name, str(g["state"]), "", "", "", "", "", "", "", balloon, duration_ns(io_p99)});
        for (const auto& v : g["vcpus"]) {
            const json* p = prev.count({name, v["vcpu"].get<unsigned>()}) ? prev[{name, v["vcpu"].get<unsigned>()}] : nullptr;
            auto delta = [&](std::initializer_list<const char*> path) -> std::optional<double> {
                const json* a = find_path(v, path);
                const json* b = p ? find_path(*p, path) : nullptr;
                if (!a || !a->is_number() || !b || !b->is_number()) return std::nullopt;
                double d = a->get<double>() - b->get<double>();
                return d < 0 ? std::nullopt : std::optional(d);
            };
            std::string cpu = "-", guest = "-", exits = "-", p50 = "-", p99 = "-";
            auto user = delta({"cpu_ns", "user"}), sys = delta({"cpu_ns", "system"});
            if (user && sys) cpu = fmt::format("{:.0f}", (*user + *sys) / (interval_s * 1e7));
            // Time in guest: KVM_RUN time from eBPF, else the kernel's guest time.
            if (auto in = delta({"in_kvm_run_ns"}); in && v["in_kvm_run_ns"].get<double>() > 0)
                guest = fmt::format("{:.0f}", *in / (interval_s * 1e7));
            else if (auto gt = delta({"cpu_ns", "guest"}); gt && v["cpu_ns"]["guest"].get<double>() > 0)
                guest = fmt::format("{:.0f}", *gt / (interval_s * 1e7));
            if (p && v.contains("exits")) {
                std::vector<std::pair<double, std::string>> by;
                for (auto it = v["exits"].begin(); it != v["exits"].end(); ++it) {
                    double before_n = (*p).contains("exits") && (*p)["exits"].contains(it.key()) ? (*p)["exits"][it.key()].get<double>() : 0;
                    double d = it.value().get<double>() - before_n;
                    if (d > 0) by.emplace_back(d / interval_s, it.key());
                }
                std::sort(by.rbegin(), by.rend());
                exits.clear();
                for (size_t i = 0; i < by.size() && i < 3; ++i) exits += fmt::format("{}{} {}", i ? " " : "", by[i].second, rate(by[i].first));
                if (exits.empty()) exits = "0";
            }
            if (const json* rq = find_path(v, {"runq_wait", "buckets"})) {
                const json* prq = p ? find_path(*p, {"runq_wait", "buckets"}) : nullptr;
                p50 = duration_ns(quantile(*rq, prq, 0.5));
                p99 = duration_ns(quantile(*rq, prq, 0.99));
            }
            std::string state = v.value("parked", false) ? "paused" : str(v.value("thread_state", json()));
            t.rows.push_back({fmt::format("  vcpu {}", v["vcpu"].get<unsigned>()), state, str(v["host_cpu"]), str(v["pinned"]), cpu, guest,
                              exits, p50, p99, "", ""});
        }
    }
    return t.render();
}

int run_top(const Ctl& ctl, double interval_s, int iterations) {
    auto c = ctl.connect();
    if (!c) {
        std::fprintf(stderr, "vireoctl: %s\n", c.error().c_str());
        return kExitUnreachable;
    }
    bool tty = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
    struct sigaction sa {};
    sa.sa_handler = on_quit;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    TerminalMode mode(tty);
    std::optional<json> before;
    int status = 0;
    for (int frame = 0; !g_quit && (iterations <= 0 || frame < iterations); ++frame) {
        auto r = c->call({{"request", "metrics"}});
        if (!r || r->contains("error")) {
            status = r ? kExitError : kExitUnreachable;
            std::string why = r ? str((*r)["error"]["message"]) : r.error();
            mode.restore();
            std::fprintf(stderr, "vireoctl: top: %s\n", why.c_str());
            return status;
        }
        json now = (*r)["result"];
        std::string frame_text = fmt::format("vireoctl top: {} guests, every {:.1f} s{}\n\n", now["guests"].size(), interval_s,
                                             tty ? "  (q to quit)" : "") +
                                 render_top(now, before ? &*before : nullptr, interval_s);
        if (tty) std::fputs("\x1b[H\x1b[2J", stdout);
        std::fputs(frame_text.c_str(), stdout);
        if (!tty) std::fputs("\n", stdout);
        std::fflush(stdout);
        before = std::move(now);
        if (iterations > 0 && frame + 1 >= iterations) break;
        // Wait for the next frame, or a key.
        auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(interval_s);
        while (!g_quit) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
            if (left <= 0) break;
            pollfd p{STDIN_FILENO, POLLIN, 0};
            int n = ::poll(&p, tty ? 1 : 0, int(left));
            if (n > 0 && (p.revents & POLLIN)) {
                char ch = 0;
                if (::read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q' || ch == 3)) g_quit = 1;
            }
        }
    }
    return status;
}

// ------------------------------------------------------------ record
//
// An agent trace (agent/trace.h) sampled from the control socket, for
// tools/replay: each sample is one `controller` request (mode, limits,
// overrides) and one `metrics` request (guests, vCPU threads, balloons),
// completed on this side as the live controller completes its snapshot
// (vmm/agent_runner/snapshot_builder.h): /proc/stat, /proc/meminfo, PSI, and
// each vCPU thread's /proc schedstat -- so vireoctl must run on vireo's
// host, as the user vireo runs as (or root). A thread it cannot read keeps
// the telemetry's own figures.

volatile sig_atomic_t g_record_stop = 0;
void on_record_stop(int) { g_record_stop = 1; }

std::optional<uint64_t> opt_u64(const json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number_unsigned()) return std::nullopt;
    return j[key].get<uint64_t>();
}

vireo::agent_runner::HostPart host_part_of(const json& ctl, const json& metrics, const std::vector<unsigned>& allowed) {
    using namespace vireo;
    agent_runner::HostPart part;
    agent::Snapshot& s = part.snapshot;
    s.timestamp_ns = metrics.value("monotonic_ns", uint64_t(0));
    s.mode = parse_controller_mode(ctl.value("mode", std::string("off"))).value_or(ControllerMode::Off);
    const json& l = ctl["limits"];
    for (const auto& f : kControllerLimitFields) s.limits.*f.member = l.value(std::string(f.name), s.limits.*f.member);
    part.allowed_cpus = allowed;
    part.any_on = true;
    for (const json& g : metrics["guests"]) {
        if (g.value("state", std::string()) != "running") continue;
        agent::GuestSample gs;
        gs.name = g.value("name", std::string());
        gs.ram_bytes = g.value("mem_bytes", uint64_t(0));
        gs.configured_class = vireo::parse_class_setting(g.value("class", std::string("auto"))).value_or(agent::GuestClass::Unknown);
        if (ctl.contains("guests") && ctl["guests"].contains(gs.name)) {
            const json& c = ctl["guests"][gs.name];
            gs.control.mode = parse_controller_mode(c.value("mode", std::string("inherit")));
            gs.control.pin_held = c["held"].value("pin", false);
            gs.control.balloon_held = c["held"].value("balloon", false);
        }
        if (const json& b = g["balloon"]; b.is_object() && b["actual_bytes"].is_number()) {
            agent::BalloonSample bs;
            bs.target_bytes = b.value("target_bytes", uint64_t(0));
            bs.actual_bytes = b.value("actual_bytes", uint64_t(0));
            if (b["counters"].is_object()) bs.deflate_on_oom_events = b["counters"].value("deflate_on_oom_events", uint64_t(0));
            const json& st = b["stats"];
            bs.stats.swap_in = opt_u64(st, "swap_in");
            bs.stats.swap_out = opt_u64(st, "swap_out");
            bs.stats.major_faults = opt_u64(st, "major_faults");
            bs.stats.minor_faults = opt_u64(st, "minor_faults");
            bs.stats.free_memory = opt_u64(st, "free");
            bs.stats.total_memory = opt_u64(st, "total");
            bs.stats.available_memory = opt_u64(st, "available");
            bs.stats.disk_caches = opt_u64(st, "disk_caches");
            bs.stats.hugetlb_allocations = opt_u64(st, "hugetlb_alloc");
            bs.stats.hugetlb_failures = opt_u64(st, "hugetlb_fail");
            gs.balloon = bs;
        }
        std::vector<bool> bpf;
        for (const json& v : g["vcpus"]) {
            agent::VcpuSample vs;
            vs.index = v.value("vcpu", 0u);
            vs.tid = v["tid"].is_number() ? v["tid"].get<int32_t>() : 0;
            if (v["pinned"].is_string())
                if (auto cpus = parse_cpu_list(v["pinned"].get<std::string>())) vs.pinned_cpus = *cpus;
            vs.exits = v.value("exits_total", uint64_t(0));
            vs.in_kvm_run_ns = opt_u64(v, "in_kvm_run_ns").value_or(0);
            bool runq = v["runq_wait"].is_object();
            if (runq) {
                vs.runq_waits = v["runq_wait"].value("count", uint64_t(0));
                vs.runq_wait_ns = v["runq_wait"].value("sum_ns", uint64_t(0));
            }
            if (v["halt_wait"].is_object()) vs.halt_wait_ns = v["halt_wait"].value("sum_ns", uint64_t(0));
            bpf.push_back(runq);
            gs.vcpus.push_back(std::move(vs));
        }
        part.bpf_runq.push_back(std::move(bpf));
        s.guests.push_back(std::move(gs));
    }
    return part;
}

int run_record(const Ctl& ctl, double seconds, double interval_s, const std::string& path) {
    int status = 0;
    auto info = ctl.call({{"request", "info"}}, status);
    if (!info) return status;
    auto allowed = vireo::parse_cpu_list((*info)["host_cpus"].value("allowed", std::string()));
    pid_t pid = (*info).value("pid", 0);
    std::ofstream out(path, std::ios::trunc);
    if (!out) {
        std::fprintf(stderr, "vireoctl: record: cannot write %s\n", path.c_str());
        return kExitError;
    }
    out << vireo::agent::trace_header() << "\n" << std::flush;
    struct sigaction sa {};
    sa.sa_handler = on_record_stop;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    vireo::agent_runner::SnapshotBuilder builder(pid);
    auto start = std::chrono::steady_clock::now(), next = start;
    uint64_t samples = 0, last_ns = 0;
    while (!g_record_stop) {
        auto c = ctl.call({{"request", "controller"}}, status);
        if (!c) break;
        auto m = ctl.call({{"request", "metrics"}}, status);
        if (!m) break;
        vireo::agent::Snapshot snap = builder.complete(host_part_of(*c, *m, allowed ? *allowed : std::vector<unsigned>{}));
        if (snap.timestamp_ns > last_ns) {  // the trace wants growing timestamps
            out << vireo::agent::to_trace_line(snap) << "\n" << std::flush;
            last_ns = snap.timestamp_ns;
            ++samples;
        }
        next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(interval_s));
        if (seconds > 0 && next - start > std::chrono::duration<double>(seconds)) break;
        while (!g_record_stop && std::chrono::steady_clock::now() < next)
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(next - std::chrono::steady_clock::now(),
                                                                                       std::chrono::milliseconds(100)));
    }
    std::fprintf(stderr, "vireoctl: record: %llu snapshots in %s (replay: replay --trace %s)\n", (unsigned long long)samples,
                 path.c_str(), path.c_str());
    return samples ? status : (status ? status : kExitError);
}

enum class Print { Raw, List, Vcpus, Balloon, Disks, Decisions, Controller, Events };

// One subcommand per request of the control protocol, made from its table
// (vmm/control/request_table.h): the same names, guests and fields the
// server accepts.
struct RequestCommands {
    struct Subcommand {
        const vireo::control::RequestSpec* spec;
        CLI::App* app;
        std::vector<std::pair<std::string, CLI::Option*>> options;  // field key -> its option
    };
    std::vector<Subcommand> subcommands;
    std::string guest;
    std::map<std::string, std::vector<std::string>> values;  // field key -> values as typed
    std::map<std::string, std::string> single;               // the single-valued fields, before they join `values`

    void add_to(CLI::App& app) {
        for (const auto& spec : vireo::control::request_specs()) {
            auto* sub = app.add_subcommand(std::string(spec.name), std::string(spec.help));
            using vireo::control::GuestArg;
            if (spec.guest == GuestArg::Required) sub->add_option("guest", guest, std::string(spec.guest_help))->required();
            else if (spec.guest == GuestArg::Optional)
                sub->add_option(spec.optional_guest_positional ? "guest" : "--guest", guest, std::string(spec.guest_help));
            Subcommand sc{&spec, sub, {}};
            for (const auto& f : spec.fields) {
                using vireo::control::FieldType;
                std::string name = f.flag.empty() ? std::string(f.key) : std::string(f.flag);
                CLI::Option* o;
                // A single value binds to a string (a vector positional would
                // swallow the positionals after it); repeatable ones to a list.
                if (f.type == FieldType::Names || f.type == FieldType::Settings)
                    o = sub->add_option(name, values[std::string(f.key)], std::string(f.help));
                else
                    o = sub->add_option(name, single[std::string(f.key)], std::string(f.help));
                if (f.required) o->required();
                sc.options.emplace_back(std::string(f.key), o);
            }
            subcommands.push_back(std::move(sc));
        }
    }

    // After parsing: the request of the subcommand given (request stays
    // null where none of these was), and how to print its answer.
    std::expected<void, std::string> parsed_request(json& request, Print& print) {
        for (const auto& sc : subcommands) {
            if (!sc.app->parsed()) continue;
            for (const auto& [key, option] : sc.options)
                if (option->count() && single.contains(key)) values[key] = {single[key]};
            auto r = vireo::control::build_request(*sc.spec, guest, values);
            if (!r) return std::unexpected(r.error());
            request = std::move(*r);
            static const std::map<std::string_view, Print> printers = {
                {"list", Print::List},         {"vcpus", Print::Vcpus},         {"balloon", Print::Balloon},
                {"disks", Print::Disks},       {"controller", Print::Controller}, {"decisions", Print::Decisions},
                {"events", Print::Events}};
            if (auto it = printers.find(sc.spec->name); it != printers.end()) print = it->second;
        }
        return {};
    }
};

// A stream: prints each event line until vireo closes or Ctrl-C.
int run_events(Ctl& ctl, const json& request) {
    auto c = ctl.connect();
    if (!c) {
        std::fprintf(stderr, "vireoctl: %s\n", c.error().c_str());
        return kExitUnreachable;
    }
    auto r = c->call(request);
    if (!r) {
        std::fprintf(stderr, "vireoctl: %s\n", r.error().c_str());
        return kExitUnreachable;
    }
    if (r->contains("error")) {
        std::fprintf(stderr, "vireoctl: error: %s\n", str((*r)["error"]["message"]).c_str());
        return kExitError;
    }
    ::signal(SIGINT, on_quit);
    while (!g_quit) {
        auto line = c->read_line(std::chrono::milliseconds(200));
        if (!line) {
            if (line.error() == "timeout") continue;
            break;
        }
        if (ctl.json_out) {
            std::cout << *line << "\n" << std::flush;
            continue;
        }
        auto j = json::parse(*line, nullptr, false);
        if (j.is_discarded() || !j.contains("event")) continue;
        json e = j["event"];
        std::string rest;
        for (auto it = e.begin(); it != e.end(); ++it)
            if (it.key() != "seq" && it.key() != "time" && it.key() != "type" && it.key() != "guest")
                rest += fmt::format(" {}={}", it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
        std::cout << fmt::format("#{} {} {}{}{}\n", e["seq"].get<uint64_t>(), str(e["time"]), str(e["type"]),
                                 e.contains("guest") ? " " + str(e["guest"]) : "", rest)
                  << std::flush;
    }
    return 0;
}

void print_result(Print print, const json& request, const std::string& guest, const json& result) {
    switch (print) {
        case Print::List: print_list(result); break;
        case Print::Vcpus: print_vcpus(result); break;
        case Print::Balloon: print_balloon(result); break;
        case Print::Disks: print_disks(result); break;
        case Print::Decisions: print_decisions(result); break;
        case Print::Controller: print_controller(result); break;
        default:
            if (result.contains("outcome"))
                std::cout << fmt::format("{} {}: {} (decision #{}){}\n", str(request.at("request")), guest, str(result.at("outcome")),
                                         str(result.value("seq", json())),
                                         result.contains("state") ? ", now " + str(result.at("state")) : std::string());
            else
                std::cout << result.dump(2) << "\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    Ctl ctl;
    CLI::App app{"vireoctl: control a running vireo through its control socket", "vireoctl"};
    app.set_version_flag("--version", std::string("vireoctl ") + VIREO_VERSION);
    app.require_subcommand(1);
    app.add_option("--control", ctl.control, "control socket (default: the one vireo in " + vireo::control::default_control_dir() +
                                                 ", or $VIREO_CONTROL)");
    app.add_flag("--json", ctl.json_out, "print the response's result as JSON (for scripts)");
    app.add_option("--reason", ctl.reason, "why: recorded with the action in the decision log");

    RequestCommands requests;
    requests.add_to(app);
    double interval_s = 1;
    int iterations = 0;
    double record_s = 60;
    std::string record_file;
    auto* record = app.add_subcommand("record", "write a telemetry trace for tools/replay (agent trace format)");
    record->add_option("--seconds", record_s, "how long (default 60; 0: until Ctrl-C)");
    record->add_option("--interval", interval_s, "seconds between snapshots (default 1)");
    record->add_option("file", record_file, "the trace file to write")->required();
    auto* top = app.add_subcommand("top", "live per-guest, per-vCPU view (q or Ctrl-C quits)");
    top->add_option("--interval", interval_s, "seconds between frames (default 1)");
    top->add_option("--iterations", iterations, "stop after N frames (default: until q)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : kExitUsage;
    }

    json request;
    Print print = Print::Raw;
    if (auto r = requests.parsed_request(request, print); !r) {
        std::fprintf(stderr, "vireoctl: %s\n", r.error().c_str());
        return kExitUsage;
    }
    if (record->parsed()) {
        if (interval_s < 0.1 || record_s < 0) {
            std::fprintf(stderr, "vireoctl: record: --interval must be at least 0.1 s and --seconds not negative\n");
            return kExitUsage;
        }
        return run_record(ctl, record_s, interval_s, record_file);
    } else if (top->parsed()) {
        if (interval_s < 0.1) {
            std::fprintf(stderr, "vireoctl: top: --interval must be at least 0.1 s\n");
            return kExitUsage;
        }
        return run_top(ctl, interval_s, iterations);
    }

    if (print == Print::Events) {
        return run_events(ctl, request);
    }

    int status = 0;
    auto result = ctl.call(request, status);
    if (!result) return status;
    if (ctl.json_out) {
        std::cout << result->dump() << "\n";
        return 0;
    }
    print_result(print, request, requests.guest, *result);
    return 0;
}
