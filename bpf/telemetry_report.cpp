#include "bpf/telemetry_report.h"

#include <fmt/format.h>
#include <linux/kvm.h>

#include <algorithm>

#include "vmm/kvm/vcpu_exit_counters.h"
#include "vmm/wall_time.h"

namespace vireo {

namespace {

void copy_hist(std::span<const uint64_t> in, vireo_hist& out) {
    for (size_t i = 0; i < in.size(); ++i) out.bucket[std::min<size_t>(i, VIREO_HIST_BUCKETS - 1)] += in[i];
}

// "io:20000,mmio:3" over the non-zero entries of a per-reason array.
std::string by_reason(const uint64_t (&values)[VIREO_UEXIT_REASONS]) {
    std::string s;
    for (unsigned r = 0; r < VIREO_UEXIT_REASONS; ++r)
        if (values[r]) s += fmt::format("{}{}:{}", s.empty() ? "" : ",", kvm_exit_name(r), values[r]);
    return s.empty() ? "-" : s;
}

uint64_t sum(const uint64_t (&values)[VIREO_UEXIT_REASONS]) {
    uint64_t t = 0;
    for (uint64_t v : values) t += v;
    return t;
}

bool hist_empty(const vireo_hist& h) {
    return std::all_of(std::begin(h.bucket), std::end(h.bucket), [](uint64_t v) { return v == 0; });
}

}  // namespace

std::string kvm_exit_name(unsigned reason) {
    static constexpr const char* kNames[] = {
        "unknown",
        "exception",
        "io",
        "hypercall",
        "debug",
        "hlt",
        "mmio",
        "irq-window-open",
        "shutdown",
        "fail-entry",
        "intr",
        "set-tpr",
        "tpr-access",
        "s390-sieic",
        "s390-reset",
        "dcr",
        "nmi",
        "internal-error",
        "osi",
        "papr-hcall",
        "s390-ucontrol",
        "watchdog",
        "s390-tsch",
        "epr",
        "system-event",
        "s390-stsi",
        "ioapic-eoi",
        "hyperv",
        "arm-nisv",
        "x86-rdmsr",
        "x86-wrmsr",
        "dirty-ring-full",
        "ap-reset-hold",
        "x86-bus-lock",
        "xen",
        "riscv-sbi",
        "riscv-csr",
        "notify",
    };
    if (reason < std::size(kNames)) return kNames[reason];
    return fmt::format("reason-{}", reason);
}

void add_vmm_counters(const VcpuExitCounters& c, vireo_vcpu_telemetry& out) {
    static_assert(VcpuExitCounters::kReasons == VIREO_UEXIT_REASONS);
    out.sources |= VIREO_TELEMETRY_VMM_COUNTERS;
    out.vmm_runs += c.runs.load(std::memory_order_relaxed);
    for (unsigned r = 0; r < VIREO_UEXIT_REASONS; ++r)
        out.vmm_exits[r] += c.by_reason[r].load(std::memory_order_relaxed);
}

void add_binary_stats(const BinaryStats::Sample& s, vireo_vcpu_telemetry& out) {
    out.sources |= VIREO_TELEMETRY_BINARY_STATS;
    struct Field {
        const char* name;
        uint64_t vireo_vcpu_telemetry::*field;
    };
    static constexpr Field kFields[] = {
        {"exits", &vireo_vcpu_telemetry::kvm_exits},
        {"io_exits", &vireo_vcpu_telemetry::kvm_io_exits},
        {"mmio_exits", &vireo_vcpu_telemetry::kvm_mmio_exits},
        {"signal_exits", &vireo_vcpu_telemetry::kvm_signal_exits},
        {"irq_exits", &vireo_vcpu_telemetry::kvm_irq_exits},
        {"halt_exits", &vireo_vcpu_telemetry::kvm_halt_exits},
        {"halt_wakeup", &vireo_vcpu_telemetry::kvm_halt_wakeup},
        {"insn_emulation", &vireo_vcpu_telemetry::kvm_insn_emulation},
        {"halt_successful_poll", &vireo_vcpu_telemetry::halt_successful_poll},
        {"halt_attempted_poll", &vireo_vcpu_telemetry::halt_attempted_poll},
        {"halt_poll_success_ns", &vireo_vcpu_telemetry::halt_poll_success_ns},
        {"halt_poll_fail_ns", &vireo_vcpu_telemetry::halt_poll_fail_ns},
        {"halt_wait_ns", &vireo_vcpu_telemetry::halt_wait_ns},
    };
    for (const auto& f : kFields)
        if (auto v = s.value(f.name)) out.*f.field += *v;
    copy_hist(s.values("halt_wait_hist"), out.halt_wait_hist);
}

void finish_guest(Telemetry& t) {
    auto& g = t.guest;
    g.version = VIREO_TELEMETRY_VERSION;
    g.vcpu_count = uint32_t(t.vcpus.size());
    g.blk_count = uint32_t(t.blk.size());
    g.timestamp_ns = monotonic_ns();
    g.sources = t.vcpus.empty() ? 0 : ~0u;
    for (auto& v : t.vcpus) {
        // Attached but never fired although the vCPU entered the guest: a
        // KVM (like PVM) whose exits bypass the VMX/SVM path of kvm_exit.
        // Two KVM_RUN calls guarantee at least one guest entry.
        if ((v.sources & VIREO_TELEMETRY_KERNEL_EXITS) && v.kexits == 0 && std::max(v.runs, v.vmm_runs) >= 2)
            v.sources |= VIREO_TELEMETRY_KERNEL_EXITS_SILENT;
        g.sources &= v.sources;
        g.runs += v.runs;
        g.in_kvm_run_ns += v.in_kvm_run_ns;
        g.uexits += sum(v.uexits);
        g.uexit_ns += sum(v.uexit_ns);
        g.kexits += v.kexits;
        g.kexit_ns += v.kexit_ns;
        g.runq_waits += v.runq_waits;
        g.runq_wait_ns += v.runq_wait_ns;
        g.kvm_exits += v.kvm_exits;
        g.halt_wait_ns += v.halt_wait_ns;
    }
}

std::string format_hist(const vireo_hist& h) {
    std::string s;
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) {
        if (!h.bucket[i]) continue;
        if (!s.empty()) s += ' ';
        if (i == 0)
            s += fmt::format("[0]:{}", h.bucket[i]);
        else if (i == VIREO_HIST_BUCKETS - 1)
            s += fmt::format("[{},inf):{}", 1ull << (i - 1), h.bucket[i]);
        else
            s += fmt::format("[{},{}):{}", 1ull << (i - 1), 1ull << i, h.bucket[i]);
    }
    return s;
}

std::vector<std::string> format_telemetry(const Telemetry& t) {
    std::vector<std::string> lines;
    for (const auto& v : t.vcpus) {
        std::string id = fmt::format("vcpu{}", v.vcpu);
        if (v.sources & VIREO_TELEMETRY_VMM_COUNTERS)
            lines.push_back(fmt::format("{} vmm: runs={} exits={} by_reason={}", id, v.vmm_runs, sum(v.vmm_exits),
                                        by_reason(v.vmm_exits)));
        if (v.sources & VIREO_TELEMETRY_VCPU_TIME)
            lines.push_back(
                fmt::format("{} bpf: runs={} exits={} by_reason={} interrupted={} in_kvm_run_ns={} "
                            "user_ns={} user_ns_by_reason={} interrupted_ns={}",
                            id, v.runs, sum(v.uexits), by_reason(v.uexits), v.interrupted_runs, v.in_kvm_run_ns,
                            sum(v.uexit_ns), by_reason(v.uexit_ns), v.interrupted_ns));
        if (v.sources & VIREO_TELEMETRY_RUNQUEUE)
            lines.push_back(fmt::format("{} runq: waits={} wait_ns={}", id, v.runq_waits, v.runq_wait_ns));
        if (v.sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT) {
            lines.push_back(
                fmt::format("{} kexit: not measured: kvm_exit/kvm_entry attached but never fired in {} "
                            "KVM_RUN calls (this KVM handles exits outside the VMX/SVM path, e.g. PVM)",
                            id, std::max(v.runs, v.vmm_runs)));
        } else if (v.sources & VIREO_TELEMETRY_KERNEL_EXITS) {
            std::string reasons;
            const bool svm = v.kexit_isa == VIREO_ISA_SVM;
            for (unsigned s = 0; s < VIREO_KEXIT_SLOTS; ++s) {
                if (!v.kexit_count[s]) continue;
                unsigned r = vireo_kexit_reason(s);
                std::string name = r == 0xffffffffu ? "other" : svm ? fmt::format("{:#x}", r) : fmt::format("{}", r);
                reasons += fmt::format("{}{}:{}", reasons.empty() ? "" : ",", name, v.kexit_count[s]);
            }
            lines.push_back(fmt::format("{} kexit: isa={} exits={} ns={} by_reason={}", id,
                                        svm                            ? "svm"
                                        : v.kexit_isa == VIREO_ISA_VMX ? "vmx"
                                                                       : "unknown",
                                        v.kexits, v.kexit_ns, reasons.empty() ? "-" : reasons));
        }
        if (v.sources & VIREO_TELEMETRY_BINARY_STATS)
            lines.push_back(
                fmt::format("{} kvm: exits={} io_exits={} mmio_exits={} signal_exits={} irq_exits={} "
                            "halt_exits={} halt_wakeup={} insn_emulation={} halt_wait_ns={} "
                            "halt_poll_success_ns={} halt_poll_fail_ns={}",
                            id, v.kvm_exits, v.kvm_io_exits, v.kvm_mmio_exits, v.kvm_signal_exits, v.kvm_irq_exits,
                            v.kvm_halt_exits, v.kvm_halt_wakeup, v.kvm_insn_emulation, v.halt_wait_ns,
                            v.halt_poll_success_ns, v.halt_poll_fail_ns));
        const std::pair<const char*, const vireo_hist*> hists[] = {
            {"kvm_run", &v.kvm_run_hist}, {"user", &v.uexit_hist},          {"runq", &v.runq_hist},
            {"kexit", &v.kexit_hist},     {"halt_wait", &v.halt_wait_hist},
        };
        for (const auto& [name, h] : hists)
            if (!hist_empty(*h)) lines.push_back(fmt::format("{} hist {} (ns): {}", id, name, format_hist(*h)));
    }
    for (const auto& b : t.blk) {
        if (!(b.sources & VIREO_TELEMETRY_BLK)) continue;
        std::string id = fmt::format("blk{}", b.device);
        lines.push_back(
            fmt::format("{}: submitted={} completed={} failed={} no_notify={} interrupted={} "
                        "uninterrupted={} lost={} notify_to_submit_ns={} submit_to_complete_ns={} "
                        "complete_to_irq_ns={}",
                        id, b.submitted, b.completed, b.failed, b.no_notify, b.interrupted, b.uninterrupted, b.lost,
                        b.notify_to_submit_ns, b.submit_to_complete_ns, b.complete_to_irq_ns));
        const std::pair<const char*, const vireo_hist*> hists[] = {
            {"notify_to_submit", &b.notify_to_submit_hist},
            {"submit_to_complete", &b.submit_to_complete_hist},
            {"complete_to_irq", &b.complete_to_irq_hist},
        };
        for (const auto& [name, h] : hists)
            if (!hist_empty(*h)) lines.push_back(fmt::format("{} hist {} (ns): {}", id, name, format_hist(*h)));
    }
    return lines;
}

}  // namespace vireo
