#include "bpf/probe_set.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <vector>

#include "bpf/probe_abi.h"
#include "bpf/probe_parts.h"
#include "bpf/vireo.skel.h"
#include "vmm/log.h"

namespace vireo {

namespace {

constexpr std::string_view kProbeNames[kProbeCount] = {"vcpu-time", "kernel-exits", "runqueue", "blk"};

// libbpf explains every failure on stderr; vireo says what matters in one
// line itself, so libbpf's own words go to the debug log.
int libbpf_to_log(libbpf_print_level, const char* format, va_list args) {
    if (log_level() > LogLevel::Debug) return 0;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, format, args);
    std::string_view line(buf, n > 0 ? std::min<size_t>(size_t(n), sizeof buf - 1) : 0);
    while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty()) log_debug("libbpf: {}", line);
    return 0;
}

// The program's probe, from its name prefix (vt_ in vcpu_time.bpf.c, ...).
std::optional<Probe> probe_of(const bpf_program* prog) {
    std::string_view name = bpf_program__name(prog);
    if (name.starts_with("vt_")) return Probe::VcpuTime;
    if (name.starts_with("kx_")) return Probe::KernelExits;
    if (name.starts_with("rq_")) return Probe::RunQueue;
    if (name.starts_with("blk_")) return Probe::Blk;
    return std::nullopt;
}

// Programs a probe can do without: the blk probe still measures the I/O
// stage if the kernel lacks a notify or interrupt tracepoint.
bool optional_program(std::string_view name) {
    return name == "blk_notify_mmio" || name == "blk_notify_fast_mmio" || name == "blk_set_irq";
}

// "tp/kvm/kvm_exit" -> "kvm/kvm_exit"; empty for tp_btf (no tracefs needed).
std::string classic_tracepoint(const bpf_program* prog) {
    std::string_view sec = bpf_program__section_name(prog);
    if (sec.starts_with("tp/")) return std::string(sec.substr(3));
    if (sec.starts_with("tracepoint/")) return std::string(sec.substr(11));
    return {};
}

bool is_dir(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Classic tracepoints are attached through perf_event_open with the id that
// tracefs publishes (libbpf reads it there), so tracefs must be mounted.
// Systems without systemd may not have it; root can mount it.
std::expected<std::string, std::string> tracefs_root() {
    for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
        if (is_dir(std::string(dir) + "/events")) return std::string(dir);
    if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 && is_dir("/sys/kernel/tracing/events")) {
        log_info("probes: mounted tracefs at /sys/kernel/tracing (classic tracepoints need it)");
        return std::string("/sys/kernel/tracing");
    }
    return std::unexpected(fmt::format("tracefs is not mounted and mounting it failed ({})", std::strerror(errno)));
}

// Whether the running kernel has a tracepoint: tracefs says so cheaply when
// mounted; otherwise vmlinux's BTF (parsed once, only if asked) knows the
// built-in ones. A tracepoint of a module that is not in vmlinux is
// assumed present (the load then tells).
class TracepointCatalog {
public:
    explicit TracepointCatalog(std::string tracefs) : tracefs_(std::move(tracefs)) {}
    ~TracepointCatalog() { btf__free(btf_); }
    TracepointCatalog(const TracepointCatalog&) = delete;
    TracepointCatalog& operator=(const TracepointCatalog&) = delete;

    bool absent(const std::string& category, const std::string& name) {
        if (!tracefs_.empty()) return !is_dir(tracefs_ + "/events/" + category + "/" + name);
        if (category == "kvm") return false;  // often a module: unknown here
        if (!btf_ && !btf_failed_) btf_failed_ = !(btf_ = btf__load_vmlinux_btf());
        if (!btf_) return false;
        return btf__find_by_name_kind(btf_, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF) < 0;
    }

private:
    std::string tracefs_;
    btf* btf_ = nullptr;
    bool btf_failed_ = false;
};

}  // namespace

std::string_view probe_name(Probe probe) { return kProbeNames[unsigned(probe)]; }

// One loaded copy of the probes' object (vireo.bpf.o) with the programs of
// some probes. Normally one instance holds every probe; if that fails to
// load, each probe gets its own so one probe the kernel rejects does not
// take the others down.
struct ProbeSet::Instance {
    vireo_bpf* skel = nullptr;
    std::vector<std::pair<Probe, bpf_link*>> links;

    ~Instance() {
        for (auto& [probe, link] : links) bpf_link__destroy(link);
        vireo_bpf__destroy(skel);
    }
    void detach(Probe probe) {
        std::erase_if(links, [&](auto& l) {
            if (l.first != probe) return false;
            bpf_link__destroy(l.second);
            return true;
        });
    }
    bool has(Probe probe) const {
        return std::any_of(links.begin(), links.end(), [&](const auto& l) { return l.first == probe; });
    }
};

ProbeSet::ProbeSet() = default;
ProbeSet::~ProbeSet() = default;

std::expected<std::unique_ptr<ProbeSet>, std::string> ProbeSet::start(ProbeMode mode, const ProbeOptions& options) {
    if (mode == ProbeMode::Off) return nullptr;
    std::unique_ptr<ProbeSet> set(new ProbeSet());
    set->load(options);

    // Probes that are off, grouped by reason so "no BPF rights" is said once
    // for all of them: "vcpu-time, runqueue (why); blk (why)".
    std::vector<std::pair<std::string, std::string>> groups;  // reason -> names
    for (unsigned i = 0; i < kProbeCount; ++i) {
        if (!set->wanted_[i] || set->why_off_[i].empty()) continue;
        auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == set->why_off_[i]; });
        if (it == groups.end())
            groups.push_back({set->why_off_[i], std::string(kProbeNames[i])});
        else
            it->second += fmt::format(", {}", kProbeNames[i]);
    }
    if (!groups.empty()) {
        std::string line;
        for (const auto& [why, names] : groups) line += fmt::format("{}{} ({})", line.empty() ? "" : "; ", names, why);
        if (mode == ProbeMode::On) return std::unexpected(fmt::format("--probes on: probes off: {}", line));
        set->notice_ = fmt::format("probes off: {}; vireo runs without them", line);
    }
    log_debug("probes: {}", set->summary());
    return set;
}

void ProbeSet::load(const ProbeOptions& options) {
    static std::once_flag print_once;
    std::call_once(print_once, [] { libbpf_set_print(libbpf_to_log); });
    options_ = options;
    options_.vcpus = std::max(1u, options.vcpus);
    options_.blk_devices = std::min<unsigned>(options.blk_devices, VIREO_BPF_BLK_DEVICES);
    wanted_ = {true, true, true, options_.blk_devices > 0};
    auto off_all = [&](const std::string& why) {
        for (unsigned i = 0; i < kProbeCount; ++i)
            if (wanted_[i] && why_off_[i].empty()) why_off_[i] = why;
    };

    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        off_all("the kernel exposes no BTF at /sys/kernel/btf/vmlinux; CO-RE programs cannot be relocated");
        return;
    }
    auto tracefs = tracefs_root();
    TracepointCatalog tracepoints(tracefs ? *tracefs : std::string());

    // The probes each instance will try; starts as one instance with all.
    auto open_instance = [&](unsigned mask) -> std::expected<std::unique_ptr<Instance>, int> {
        auto inst = std::make_unique<Instance>();
        inst->skel = vireo_bpf__open();
        if (!inst->skel) return std::unexpected(errno ? errno : EINVAL);
        auto* s = inst->skel;
        s->rodata->vireo_tgid = uint32_t(::getpid());
        // Maps of probes this instance does not run shrink to one entry.
        auto runs = [&](Probe p) { return (mask & (1u << unsigned(p))) != 0; };
        const uint32_t v = options_.vcpus;
        probe_parts::size_vcpu_time(*s, runs(Probe::VcpuTime), v);
        probe_parts::size_kernel_exits(*s, runs(Probe::KernelExits), v);
        probe_parts::size_runqueue(*s, runs(Probe::RunQueue), v);
        probe_parts::size_blk(*s, runs(Probe::Blk), options_.blk_inflight);

        bpf_program* prog;
        bpf_object__for_each_program(prog, s->obj) {
            auto probe = probe_of(prog);
            bool load = probe && (mask & (1u << unsigned(*probe))) && why_off_[unsigned(*probe)].empty();
            const std::string name = bpf_program__name(prog);
            if (load && !classic_tracepoint(prog).empty()) {
                // kvm_exit: attached through perf_event_open with the id
                // tracefs publishes.
                const std::string tp = classic_tracepoint(prog);
                if (!tracefs) {
                    why_off_[unsigned(*probe)] = tracefs.error();
                    load = false;
                } else if (!is_dir(*tracefs + "/events/" + tp)) {
                    why_off_[unsigned(*probe)] = fmt::format("no tracepoint {} (is kvm loaded?)", tp);
                    load = false;
                }
            } else if (load && name == "blk_submit_req") {
                // Renamed in Linux 6.2; same first argument (the request).
                if (tracepoints.absent("io_uring", "io_uring_submit_req")) {
                    if (tracepoints.absent("io_uring", "io_uring_submit_sqe")) {
                        why_off_[unsigned(*probe)] = "no tracepoint io_uring_submit_req or io_uring_submit_sqe";
                        load = false;
                    } else {
                        bpf_program__set_attach_target(prog, 0, "io_uring_submit_sqe");
                    }
                }
            } else if (load && optional_program(name)) {
                std::string_view tp = bpf_program__section_name(prog);
                tp.remove_prefix(tp.find('/') + 1);  // "tp_btf/kvm_mmio" -> "kvm_mmio"
                if (tracepoints.absent("kvm", std::string(tp))) {
                    log_debug("probes: no tracepoint kvm:{}; {} stays out", tp, name);
                    load = false;
                }
            }
            bpf_program__set_autoload(prog, load);
        }
        if (int err = vireo_bpf__load(s); err) return std::unexpected(-err);
        return inst;
    };

    unsigned all = 0;
    for (unsigned i = 0; i < kProbeCount; ++i)
        if (wanted_[i]) all |= 1u << i;
    std::vector<std::pair<unsigned, std::unique_ptr<Instance>>> loaded;
    auto first = open_instance(all);
    if (first) {
        loaded.emplace_back(all, std::move(*first));
    } else if (first.error() == EPERM || first.error() == EACCES) {
        // The one reason that matters then, also for probes already off for
        // a lesser one (an unprivileged user cannot mount tracefs either).
        for (unsigned i = 0; i < kProbeCount; ++i) why_off_[i].clear();
        off_all(fmt::format("no BPF rights: {}; needs root or CAP_BPF+CAP_PERFMON", std::strerror(first.error())));
        return;
    } else {
        // Load each probe alone so the one the kernel rejects is found.
        log_debug("probes: loading all probes at once failed ({}); loading one at a time",
                  std::strerror(first.error()));
        for (unsigned i = 0; i < kProbeCount; ++i) {
            if (!wanted_[i] || !why_off_[i].empty()) continue;
            auto one = open_instance(1u << i);
            if (one)
                loaded.emplace_back(1u << i, std::move(*one));
            else if (why_off_[i].empty())
                why_off_[i] = fmt::format("the kernel rejected its programs ({})", std::strerror(one.error()));
        }
    }

    // Attach, one program at a time; a probe whose required program does
    // not attach is detached as a whole.
    for (auto& [mask, inst] : loaded) {
        bpf_program* prog;
        bpf_object__for_each_program(prog, inst->skel->obj) {
            if (!bpf_program__autoload(prog)) continue;
            auto probe = probe_of(prog);
            if (!probe || !why_off_[unsigned(*probe)].empty()) continue;
            bpf_link* link = bpf_program__attach(prog);
            if (!link) {
                int err = errno;
                std::string name = bpf_program__name(prog);
                if (optional_program(name)) {
                    log_debug("probes: {} did not attach ({}); that stage is not measured", name, std::strerror(err));
                    continue;
                }
                why_off_[unsigned(*probe)] =
                    fmt::format("attaching {}: {}", bpf_program__section_name(prog), std::strerror(err));
                inst->detach(*probe);
                continue;
            }
            inst->links.emplace_back(*probe, link);
        }
        for (unsigned i = 0; i < kProbeCount; ++i)
            if ((mask & (1u << i)) && inst->has(Probe(i)) && why_off_[i].empty()) by_probe_[i] = inst.get();
    }
    for (unsigned i = 0; i < kProbeCount && !loaded.empty(); ++i) {
        if (wanted_[i] && !by_probe_[i] && why_off_[i].empty()) why_off_[i] = "no program attached";
    }
    // Keep the instances that run something.
    unsigned n = 0;
    for (auto& [mask, inst] : loaded)
        if (!inst->links.empty()) instances_[n++] = std::move(inst);
}

bool ProbeSet::attached(Probe probe) const { return by_probe_[unsigned(probe)] != nullptr; }

bool ProbeSet::any_attached() const {
    return std::any_of(by_probe_.begin(), by_probe_.end(), [](auto* i) { return i != nullptr; });
}

const std::string& ProbeSet::why_off(Probe probe) const { return why_off_[unsigned(probe)]; }

std::string ProbeSet::summary() const {
    std::string s;
    for (unsigned i = 0; i < kProbeCount; ++i) {
        if (!wanted_[i]) continue;
        if (!s.empty()) s += ", ";
        s += fmt::format("{} {}", kProbeNames[i], by_probe_[i] ? "on" : fmt::format("off ({})", why_off_[i]));
    }
    return s;
}

ProbeSet::Instance* ProbeSet::instance_of(Probe probe) const { return by_probe_[unsigned(probe)]; }

std::expected<void, std::string> ProbeSet::add_vcpu(pid_t tid, unsigned slot) {
    if (slot >= options_.vcpus)
        return std::unexpected(
            fmt::format("probes: vCPU slot {} is beyond the {} the probes were sized for", slot, options_.vcpus));
    vireo_thread t{};
    t.slot = slot;
    t.role = VIREO_ROLE_VCPU;
    uint32_t key = uint32_t(tid);
    for (auto& inst : instances_)
        if (inst && bpf_map__update_elem(inst->skel->maps.vireo_threads, &key, sizeof key, &t, sizeof t, BPF_ANY) != 0)
            return std::unexpected(fmt::format("probes: registering vCPU thread {}: {}", tid, std::strerror(errno)));
    return {};
}

void ProbeSet::remove_thread(pid_t tid) {
    uint32_t key = uint32_t(tid);
    for (auto& inst : instances_)
        if (inst) bpf_map__delete_elem(inst->skel->maps.vireo_threads, &key, sizeof key, 0);
}

void ProbeSet::reset_counters() {
    for (auto& inst : instances_) {
        if (!inst) continue;
        probe_parts::zero_vcpu_time(*inst->skel);
        probe_parts::zero_kernel_exits(*inst->skel);
        probe_parts::zero_runqueue(*inst->skel);
        probe_parts::zero_blk(*inst->skel);
    }
}

std::expected<void, std::string> ProbeSet::add_blk_device(unsigned device, uint64_t notify_gpa,
                                                          std::optional<uint32_t> gsi) {
    if (device >= options_.blk_devices)
        return std::unexpected(fmt::format("probes: blk device {} is beyond the {} the probes were sized for", device,
                                           options_.blk_devices));
    Instance* inst = instance_of(Probe::Blk);
    if (!inst) return {};
    return probe_parts::add_blk_device(*inst->skel, device, notify_gpa, gsi);
}

void ProbeSet::read_vcpu(unsigned slot, vireo_vcpu_telemetry& out) const {
    if (slot >= options_.vcpus) return;
    if (Instance* inst = instance_of(Probe::VcpuTime)) probe_parts::read_vcpu_time(*inst->skel, slot, out);
    if (Instance* inst = instance_of(Probe::KernelExits)) probe_parts::read_kernel_exits(*inst->skel, slot, out);
    if (Instance* inst = instance_of(Probe::RunQueue)) probe_parts::read_runqueue(*inst->skel, slot, out);
}

void ProbeSet::read_blk(unsigned device, vireo_blk_telemetry& out) const {
    Instance* inst = instance_of(Probe::Blk);
    if (!inst || device >= options_.blk_devices) return;
    probe_parts::read_blk(*inst->skel, device, out);
}

ProbeSet::Cost ProbeSet::cost() const {
    Cost c;
    for (const auto& inst : instances_) {
        if (!inst) continue;
        bpf_program* prog;
        bpf_object__for_each_program(prog, inst->skel->obj) {
            int fd = bpf_program__fd(prog);
            if (fd < 0) continue;
            bpf_prog_info info{};
            uint32_t len = sizeof info;
            if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
            c.runs += info.run_cnt;
            c.run_ns += info.run_time_ns;
        }
    }
    return c;
}

}  // namespace vireo
