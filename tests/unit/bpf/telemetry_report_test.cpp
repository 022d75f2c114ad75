// Telemetry records and what the probes and the loader share with them:
// the log2 bucket function (same convention as KVM's LOG_HIST), exit
// reason slots, the blk user_data tag, and the --stats lines.
#include "vireo/telemetry.h"

#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <algorithm>
#include <string>

#include "bpf/probe_abi.h"
#include "bpf/probe_set.h"
#include "bpf/telemetry_report.h"
#include "vmm/vcpu_runner.h"

namespace vireo {
namespace {

// KVM_STATS_LOG_HIST_UPDATE: bucket = fls64(value), clamped to size-1.
unsigned kvm_log_hist_bucket(uint64_t v, unsigned size) {
    unsigned fls = v ? 64 - unsigned(__builtin_clzll(v)) : 0;
    return std::min(fls, size - 1);
}

TEST(HistBucket, SameAsKvmLogHist) {
    for (uint64_t v : {0ull, 1ull, 2ull, 3ull, 4ull, 1023ull, 1024ull, 1025ull, (1ull << 29) - 1, 1ull << 29,
                       (1ull << 30) - 1, 1ull << 30, 1ull << 31, 1ull << 40, ~0ull})
        EXPECT_EQ(vireo_hist_bucket(v), kvm_log_hist_bucket(v, VIREO_HIST_BUCKETS)) << v;
    for (unsigned i = 1; i < 31; ++i) {
        EXPECT_EQ(vireo_hist_bucket(1ull << (i - 1)), i);
        EXPECT_EQ(vireo_hist_bucket((1ull << i) - 1), i);
    }
    EXPECT_EQ(vireo_hist_bucket(~0ull), VIREO_HIST_BUCKETS - 1u);
}

TEST(KexitSlot, RoundTripsVmxAndSvmReasons) {
    // VMX basic reasons and SVM codes below 0x100 (IOIO 0x7b, MSR 0x7c).
    for (unsigned r : {0u, 1u, 30u, 48u, 0x7bu, 0x7cu, 255u}) EXPECT_EQ(vireo_kexit_reason(vireo_kexit_slot(r)), r);
    // SVM NPF (0x400), AVIC (0x401, 0x402), VMGEXIT (0x403).
    for (unsigned r : {0x400u, 0x401u, 0x402u, 0x403u, 0x47eu}) {
        EXPECT_GE(vireo_kexit_slot(r), 256u);
        EXPECT_LT(vireo_kexit_slot(r), VIREO_KEXIT_SLOTS - 1u);
        EXPECT_EQ(vireo_kexit_reason(vireo_kexit_slot(r)), r);
    }
    // Everything else shares the last slot ("other"), never out of range.
    for (unsigned r : {256u, 0x3ffu, 0x47fu, 0x500u, 0xffffffffu}) {
        EXPECT_EQ(vireo_kexit_slot(r), VIREO_KEXIT_SLOTS - 1u);
        EXPECT_EQ(vireo_kexit_reason(VIREO_KEXIT_SLOTS - 1u), 0xffffffffu);
    }
}

TEST(BlkUserData, TagDeviceAndRequestIdRoundTrip) {
    // A request's completion object address is a valid id: user-space
    // addresses fit in 47 bits.
    uint64_t ptr = 0x7ffd12345678ull;
    uint64_t ud = VIREO_BLK_USER_DATA(3, ptr);
    EXPECT_TRUE(VIREO_BLK_IS_TAGGED(ud));
    EXPECT_EQ(VIREO_BLK_DEVICE(ud), 3u);
    EXPECT_EQ(VIREO_BLK_REQUEST_ID(ud), ptr);
    EXPECT_FALSE(VIREO_BLK_IS_TAGGED(ptr));
    EXPECT_FALSE(VIREO_BLK_IS_TAGGED(0ull));
}

TEST(ProbeMode, Parses) {
    EXPECT_EQ(parse_probe_mode("on"), ProbeMode::On);
    EXPECT_EQ(parse_probe_mode("off"), ProbeMode::Off);
    EXPECT_EQ(parse_probe_mode("auto"), ProbeMode::Auto);
    EXPECT_FALSE(parse_probe_mode("yes"));
    EXPECT_FALSE(parse_probe_mode(""));
    EXPECT_EQ(to_string(ProbeMode::Auto), "auto");
}

TEST(Telemetry, KernelExitsSilentOnlyWhenTheVcpuRan) {
    Telemetry t;
    t.vcpus.resize(2);
    t.vcpus[0].sources = VIREO_TELEMETRY_KERNEL_EXITS | VIREO_TELEMETRY_VCPU_TIME;
    t.vcpus[0].runs = 100;  // ran, yet kvm_exit never fired
    t.vcpus[1].sources = VIREO_TELEMETRY_KERNEL_EXITS | VIREO_TELEMETRY_VCPU_TIME;
    t.vcpus[1].runs = 100;
    t.vcpus[1].kexits = 99;
    finish_guest(t);
    EXPECT_TRUE(t.vcpus[0].sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT);
    EXPECT_FALSE(t.vcpus[1].sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT);
    EXPECT_EQ(t.guest.kexits, 99u);
    EXPECT_EQ(t.guest.runs, 200u);
    EXPECT_EQ(t.guest.vcpu_count, 2u);
    EXPECT_EQ(t.guest.version, unsigned(VIREO_TELEMETRY_VERSION));

    Telemetry idle;  // never ran: nothing to conclude
    idle.vcpus.resize(1);
    idle.vcpus[0].sources = VIREO_TELEMETRY_KERNEL_EXITS;
    finish_guest(idle);
    EXPECT_FALSE(idle.vcpus[0].sources & VIREO_TELEMETRY_KERNEL_EXITS_SILENT);
}

TEST(Telemetry, VmmCountersCopyByReason) {
    VcpuExitCounters c;
    c.runs = 7;
    c.by_reason[KVM_EXIT_IO] = 5;
    c.by_reason[KVM_EXIT_MMIO] = 1;
    vireo_vcpu_telemetry v{};
    add_vmm_counters(c, v);
    EXPECT_EQ(v.vmm_runs, 7u);
    EXPECT_EQ(v.vmm_exits[KVM_EXIT_IO], 5u);
    EXPECT_EQ(v.vmm_exits[KVM_EXIT_MMIO], 1u);
    EXPECT_TRUE(v.sources & VIREO_TELEMETRY_VMM_COUNTERS);
}

TEST(Telemetry, StatsLinesCarryParsableCounts) {
    Telemetry t;
    t.vcpus.resize(1);
    auto& v = t.vcpus[0];
    v.sources = VIREO_TELEMETRY_VMM_COUNTERS | VIREO_TELEMETRY_VCPU_TIME | VIREO_TELEMETRY_RUNQUEUE;
    v.vmm_runs = v.runs = 3;
    v.vmm_exits[KVM_EXIT_IO] = v.uexits[KVM_EXIT_IO] = 2;
    v.runq_waits = 4;
    v.runq_wait_ns = 4000;
    v.runq_hist.bucket[10] = 4;
    finish_guest(t);
    auto lines = format_telemetry(t);
    auto has = [&](const std::string& s) {
        return std::any_of(lines.begin(), lines.end(), [&](auto& l) { return l.find(s) != std::string::npos; });
    };
    EXPECT_TRUE(has("vcpu0 vmm: runs=3 exits=2 by_reason=io:2"));
    EXPECT_TRUE(has("vcpu0 bpf: runs=3 exits=2 by_reason=io:2 "));
    EXPECT_TRUE(has("vcpu0 runq: waits=4 wait_ns=4000"));
    EXPECT_TRUE(has("vcpu0 hist runq (ns): [512,1024):4"));
}

TEST(Telemetry, FormatHistEdges) {
    vireo_hist h{};
    EXPECT_EQ(format_hist(h), "");
    h.bucket[0] = 1;
    h.bucket[1] = 2;
    h.bucket[VIREO_HIST_BUCKETS - 1] = 3;
    EXPECT_EQ(format_hist(h), "[0]:1 [1,2):2 [1073741824,inf):3");
}

TEST(Telemetry, ExitNames) {
    EXPECT_EQ(kvm_exit_name(KVM_EXIT_IO), "io");
    EXPECT_EQ(kvm_exit_name(KVM_EXIT_MMIO), "mmio");
    EXPECT_EQ(kvm_exit_name(KVM_EXIT_INTR), "intr");
    EXPECT_EQ(kvm_exit_name(KVM_EXIT_SYSTEM_EVENT), "system-event");
    EXPECT_EQ(kvm_exit_name(KVM_EXIT_NOTIFY), "notify");
    EXPECT_EQ(kvm_exit_name(63), "reason-63");
}

}  // namespace
}  // namespace vireo
