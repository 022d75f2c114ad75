// eBPF probes and KVM binary stats on this host's /dev/kvm, cross-checked
// against independent counts rather than "non-zero":
//  - user-space exits seen by BPF == the vCPU thread's own counters, exactly;
//  - run-queue wait summed by BPF within 5% of /proc/<tid>/schedstat's
//    run_delay, under CPU-burning neighbours on the vCPU's CPU;
//  - in-kernel exits: within 2% of the binary stats' `exits` where
//    kvm_exit fires, reported as not measured where it does not (PVM);
//  - blk: the I/O-stage histogram counts exactly the tagged io_uring
//    requests completed, the interrupt stage exactly those interrupted;
//  - without BPF rights vireo boots with one "probes off" line.
// BPF needs root: each probe test skips with that reason otherwise.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bpf/probe_abi.h"
#include "bpf/probe_set.h"
#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"
#include "vmm/kvm/binary_stats.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

extern char** environ;

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
using KeyValues = std::map<std::string, std::string>;

std::string root_reason() { return ::geteuid() == 0 ? "" : "eBPF probes need root (CAP_BPF+CAP_PERFMON)"; }

// The key=value pairs of the first stderr line containing "stats: PREFIX".
std::optional<KeyValues> stats_line(const std::string& err, const std::string& prefix) {
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) {
        auto at = line.find("stats: " + prefix);
        if (at == std::string::npos) continue;
        KeyValues kv;
        std::istringstream words(line.substr(at + 7 + prefix.size()));
        std::string w;
        while (words >> w)
            if (auto eq = w.find('='); eq != std::string::npos) kv[w.substr(0, eq)] = w.substr(eq + 1);
        return kv;
    }
    return std::nullopt;
}

uint64_t num(const KeyValues& kv, const std::string& key) {
    auto it = kv.find(key);
    return it == kv.end() ? ~0ull : std::stoull(it->second);
}

int count_lines_with(const std::string& text, const std::string& what) {
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find(what) != std::string::npos;
    return n;
}

class Probes : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason :
             {kvm_unavailable_reason(), missing_file_reason(vireo_binary()), missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
    }
    static std::vector<std::string> args(const std::string& workload, std::vector<std::string> extra = {}) {
        std::vector<std::string> a{"run",   "--kernel", testguest_binary(), "--cmdline", "workload=" + workload,
                                   "--mem", "64M",      "--console",        "stdio",     "--stats"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

// (1) Every KVM_RUN return BPF saw with errno 0, by exit reason, is one the
// vCPU thread counted -- the same numbers exactly, on every vCPU.
TEST_F(Probes, UserSpaceExitCountsEqualTheVmmCounters) {
    if (auto r = root_reason(); !r.empty()) GTEST_SKIP() << r;
    struct Case {
        std::string workload;
        unsigned cpus;
    };
    for (const Case& c : {Case{"pio-loop:3000", 1}, Case{"smp", 2}}) {
        SCOPED_TRACE(c.workload);
        auto r = run_vireo(args(c.workload, {"--probes", "on", "--cpus", std::to_string(c.cpus)}), 60s);
        ASSERT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
        for (unsigned i = 0; i < c.cpus; ++i) {
            auto vmm = stats_line(r.err, fmt::format("vcpu{} vmm:", i));
            auto bpf = stats_line(r.err, fmt::format("vcpu{} bpf:", i));
            ASSERT_TRUE(vmm && bpf) << r.describe();
            EXPECT_GT(num(*vmm, "exits"), 0u);
            EXPECT_EQ(num(*bpf, "exits"), num(*vmm, "exits")) << r.err;
            EXPECT_EQ(bpf->at("by_reason"), vmm->at("by_reason")) << r.err;
            EXPECT_EQ(num(*bpf, "runs"), num(*vmm, "runs")) << r.err;
            // Time was split between the guest and user space.
            EXPECT_GT(num(*bpf, "in_kvm_run_ns"), 0u);
            EXPECT_GT(num(*bpf, "user_ns"), 0u);
        }
        if (c.workload.starts_with("pio-loop")) {
            auto vmm = stats_line(r.err, "vcpu0 vmm:");
            EXPECT_NE(vmm->at("by_reason").find("io:"), std::string::npos) << r.err;
        }
    }
}

pid_t find_thread(pid_t pid, const std::string& comm) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        std::ifstream f(e.path() / "comm");
        std::string name;
        std::getline(f, name);
        if (name == comm) return pid_t(std::stoi(e.path().filename().string()));
    }
    return 0;
}

// run_delay (ns) from /proc/PID/task/TID/schedstat: "run_time run_delay slices".
std::optional<uint64_t> run_delay(pid_t pid, pid_t tid) {
    std::ifstream f(fmt::format("/proc/{}/task/{}/schedstat", pid, tid));
    uint64_t on_cpu = 0, delay = 0;
    if (!(f >> on_cpu >> delay)) return std::nullopt;
    return delay;
}

// Processes that burn one CPU until destroyed.
class Burners {
public:
    Burners(int cpu, int n) {
        for (int i = 0; i < n; ++i) {
            pid_t p = ::fork();
            if (p == 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                ::sched_setaffinity(0, sizeof set, &set);
                for (;;) asm volatile("" ::: "memory");  // burn, forever (a side effect, not UB)
            }
            if (p > 0) pids_.push_back(p);
        }
    }
    ~Burners() {
        for (pid_t p : pids_) ::kill(p, SIGKILL);
        for (pid_t p : pids_) ::waitpid(p, nullptr, 0);
    }

private:
    std::vector<pid_t> pids_;
};

// Children inherit the affinity of the thread that spawns them.
class PinnedSpawn {
public:
    explicit PinnedSpawn(int cpu) {
        ::sched_getaffinity(0, sizeof saved_, &saved_);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        ::sched_setaffinity(0, sizeof set, &set);
    }
    ~PinnedSpawn() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

private:
    cpu_set_t saved_;
};

// (3) Run-queue wait of the vCPU thread, summed by BPF, against the
// scheduler's own run_delay of the same thread over its whole life: the
// vCPU (busy in guest ring 3) shares one CPU with three burners.
TEST_F(Probes, RunQueueWaitMatchesSchedstatUnderContention) {
    if (auto r = root_reason(); !r.empty()) GTEST_SKIP() << r;
    if (!std::ifstream("/proc/self/schedstat")) GTEST_SKIP() << "no /proc/PID/schedstat (CONFIG_SCHED_INFO off)";
    const int cpu = int(std::thread::hardware_concurrency()) - 1;
    Burners burners(cpu, 3);
    std::optional<VireoProcess> p;
    {
        PinnedSpawn pin(cpu);
        p.emplace(args("cpu:2000", {"--probes", "on"}));
    }
    pid_t tid = 0;
    for (auto deadline = std::chrono::steady_clock::now() + 10s; !tid && std::chrono::steady_clock::now() < deadline;)
        if (!(tid = find_thread(p->pid(), "CPU 0/gvm0"))) std::this_thread::sleep_for(1ms);
    ASSERT_NE(tid, 0) << "no vCPU thread";
    // Sample until the thread is gone: the last sample is within a
    // millisecond of its end, the BPF sum covers its whole life.
    uint64_t last = 0;
    while (auto d = run_delay(p->pid(), tid)) {
        last = *d;
        std::this_thread::sleep_for(500us);
    }
    const auto& r = p->finish(60s);
    ASSERT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    auto rq = stats_line(r.err, "vcpu0 runq:");
    ASSERT_TRUE(rq) << r.describe();
    const double bpf = double(num(*rq, "wait_ns")), sched = double(last);
    std::printf("runq: BPF %.1f ms in %lu waits, schedstat run_delay %.1f ms (%+.2f%%)\n", bpf / 1e6,
                (unsigned long)num(*rq, "waits"), sched / 1e6, sched ? 100.0 * (bpf - sched) / sched : 0.0);
    EXPECT_GT(sched, 0.3e9) << "the burners did not contend (run_delay " << sched << " ns)";
    EXPECT_GT(num(*rq, "waits"), 10u);
    EXPECT_LE(std::fabs(bpf - sched), 0.05 * sched)
        << "BPF runq wait " << bpf << " ns vs schedstat run_delay " << sched << " ns\n"
        << r.err;
}

bool kvm_is_pvm() { return std::filesystem::exists("/sys/module/kvm_pvm"); }

// (2) In-kernel exits: where kvm_exit/kvm_entry fire, their count is within
// 2% of KVM's own `exits`; where they do not (PVM), vireo says so instead
// of reporting zero exits.
TEST_F(Probes, KernelExitsMatchBinaryStatsOrAreReportedSilent) {
    if (auto r = root_reason(); !r.empty()) GTEST_SKIP() << r;
    auto r = run_vireo(args("pio-loop:2000", {"--probes", "on"}), 60s);
    ASSERT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    auto kvm = stats_line(r.err, "vcpu0 kvm:");
    ASSERT_TRUE(kvm) << r.describe();
    EXPECT_GT(num(*kvm, "exits"), 0u);
    if (kvm_is_pvm()) {
        EXPECT_EQ(count_lines_with(r.err, "vcpu0 kexit: not measured: kvm_exit/kvm_entry attached but never fired"), 1)
            << r.err;
        return;
    }
    auto kx = stats_line(r.err, "vcpu0 kexit:");
    ASSERT_TRUE(kx) << r.err;
    double k = double(num(*kx, "exits")), s = double(num(*kvm, "exits"));
    EXPECT_LE(std::fabs(k - s), 0.02 * s) << r.err;
}

TEST_F(Probes, OffLoadsNothing) {
    auto r = run_vireo(args("hello", {"--probes", "off"}), 30s);
    ASSERT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    EXPECT_EQ(count_lines_with(r.err, "stats: probes: off"), 1) << r.err;
    EXPECT_EQ(count_lines_with(r.err, "vcpu0 bpf:"), 0) << r.err;
    // KVM's binary stats need no BPF.
    EXPECT_TRUE(stats_line(r.err, "vcpu0 kvm:")) << r.err;
}

// Sum of the counts of a "stats: PREFIX hist NAME (ns): [a,b):N ..." line.
std::optional<uint64_t> hist_total(const std::string& err, const std::string& prefix) {
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) {
        auto at = line.find("stats: " + prefix + " (ns): ");
        if (at == std::string::npos) continue;
        uint64_t total = 0;
        std::istringstream words(line.substr(line.find("(ns): ", at) + 6));
        std::string w;
        while (words >> w)
            if (auto colon = w.rfind("):"); colon != std::string::npos)
                total += std::stoull(w.substr(colon + 2));
            else if (w.starts_with("[0]:"))
                total += std::stoull(w.substr(4));
        return total;
    }
    return std::nullopt;
}

// (5) The blk probe end to end: the test guest's virtio-blk requests, as
// the device counted them, against what the probe saw of them.
TEST_F(Probes, BlkRequestsCountedExactlyAsTheDeviceCompletedThem) {
    if (auto r = root_reason(); !r.empty()) GTEST_SKIP() << r;
    std::string disk = std::filesystem::temp_directory_path() / fmt::format("vireo-probes-blk-{}.img", ::getpid());
    { std::ofstream(disk).close(); }
    std::filesystem::resize_file(disk, 16 << 20);
    auto r = run_vireo(args("blk-rw", {"--probes", "on", "--disk", disk}), 60s);
    std::filesystem::remove(disk);
    ASSERT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    // "virtio-blk0 (PATH): requests N: reads R (..), writes W (..), flushes F, get-id G; ..."
    auto at = r.err.find("virtio-blk0 (");
    ASSERT_NE(at, std::string::npos) << r.err;
    unsigned long reads = 0, writes = 0, flushes = 0;
    std::string tail = r.err.substr(r.err.find("): requests", at));
    ASSERT_EQ(std::sscanf(tail.c_str(), "): requests %*u: reads %lu (%*u bytes), writes %lu (%*u bytes), flushes %lu",
                          &reads, &writes, &flushes),
              3)
        << tail.substr(0, 200);
    const uint64_t io_requests = reads + writes + flushes;  // get-id is answered without I/O
    ASSERT_GT(io_requests, 0u);
    auto blk = stats_line(r.err, "blk0:");
    ASSERT_TRUE(blk) << "blk probe not on: " << r.err;
    if (num(*blk, "submitted") == 0)
        GTEST_SKIP() << "the I/O thread does not tag its io_uring user_data with VIREO_BLK_USER_DATA "
                        "(bpf/probe_abi.h) yet: the probe sees no request";
    EXPECT_EQ(num(*blk, "submitted"), io_requests) << r.err;
    EXPECT_EQ(num(*blk, "completed"), io_requests) << r.err;
    EXPECT_EQ(num(*blk, "lost"), 0u) << r.err;
    EXPECT_EQ(hist_total(r.err, "blk0 hist submit_to_complete"), io_requests) << r.err;
    // Every request was announced by a notify (or shares one of its batch).
    EXPECT_EQ(num(*blk, "no_notify") + hist_total(r.err, "blk0 hist notify_to_submit").value_or(0), io_requests)
        << r.err;
    EXPECT_EQ(hist_total(r.err, "blk0 hist complete_to_irq").value_or(0), num(*blk, "interrupted")) << r.err;
}

// ------------------------------------------------------------ unprivileged
// Makes /dev/kvm usable by everyone for the test's lifetime and restores
// its mode after.
class KvmOpenToAll {
public:
    KvmOpenToAll() {
        struct stat st;
        if (::stat("/dev/kvm", &st) == 0 && ::chmod("/dev/kvm", 0666) == 0) saved_ = st.st_mode & 07777;
    }
    ~KvmOpenToAll() {
        if (saved_) ::chmod("/dev/kvm", *saved_);
    }
    bool ok() const { return saved_.has_value(); }

private:
    std::optional<mode_t> saved_;
};

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Runs vireo as `nobody` through setpriv; exit status or -1 on timeout.
int run_as_nobody(const std::vector<std::string>& vireo_args, std::string& out, std::string& err) {
    std::string dir = std::filesystem::temp_directory_path() / fmt::format("vireo-probes-{}", ::getpid());
    std::filesystem::create_directories(dir);
    std::string out_path = dir + "/out", err_path = dir + "/err";
    std::vector<std::string> cmd{"/usr/bin/setpriv", "--reuid=nobody",  "--regid=nogroup",
                                 "--clear-groups",   "--inh-caps=-all", vireo_binary()};
    cmd.insert(cmd.end(), vireo_args.begin(), vireo_args.end());
    std::vector<char*> argv;
    for (auto& a : cmd) argv.push_back(a.data());
    argv.push_back(nullptr);
    // A clean environment: the control socket then goes to /tmp/vireo-<uid>.
    std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path_env.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -2;
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(10ms);
    }
    out = slurp(out_path);
    err = slurp(err_path);
    std::filesystem::remove_all(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string unprivileged_unavailable_reason() {
    if (::geteuid() != 0) return "needs root to switch to nobody and open /dev/kvm to it";
    if (::access("/usr/bin/setpriv", X_OK) != 0) return "no /usr/bin/setpriv (util-linux)";
    // nobody must reach the binaries: every directory on the way searchable.
    for (auto p = std::filesystem::absolute(vireo_binary()).parent_path(); p != p.root_path(); p = p.parent_path()) {
        struct stat st;
        if (::stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return p.string() + " is not searchable by nobody";
    }
    return "";
}

TEST_F(Probes, WithoutBpfRightsBootsWithOneProbesOffLine) {
    if (auto r = unprivileged_unavailable_reason(); !r.empty()) GTEST_SKIP() << r;
    KvmOpenToAll kvm;
    if (!kvm.ok()) GTEST_SKIP() << "cannot make /dev/kvm accessible to nobody";
    std::string out, err;
    int status = run_as_nobody({"run", "--kernel", std::filesystem::absolute(testguest_binary()), "--cmdline",
                                "workload=hello", "--mem", "64M"},
                               out, err);
    EXPECT_EQ(status, VIREO_EXIT_OK) << "stdout:\n" << out << "stderr:\n" << err;
    EXPECT_NE(out.find("hello from vCPU 0"), std::string::npos) << out << err;
    EXPECT_EQ(count_lines_with(err, "probes off"), 1) << err;
    EXPECT_EQ(count_lines_with(err, "BPF"), 1) << "said more than once:\n" << err;
    EXPECT_EQ(count_lines_with(err, "no BPF rights"), 1) << err;
    // One reason for all, not a reason per probe.
    EXPECT_EQ(count_lines_with(err, "tracefs"), 0) << err;
}

TEST_F(Probes, OnWithoutBpfRightsRefusesToStart) {
    if (auto r = unprivileged_unavailable_reason(); !r.empty()) GTEST_SKIP() << r;
    KvmOpenToAll kvm;
    if (!kvm.ok()) GTEST_SKIP() << "cannot make /dev/kvm accessible to nobody";
    std::string out, err;
    int status = run_as_nobody({"run", "--kernel", std::filesystem::absolute(testguest_binary()), "--cmdline",
                                "workload=hello", "--mem", "64M", "--probes", "on"},
                               out, err);
    EXPECT_EQ(status, VIREO_EXIT_HOST_ERROR) << err;
    EXPECT_TRUE(out.empty()) << "no guest may start: " << out;
    EXPECT_EQ(count_lines_with(err, "--probes on: probes off"), 1) << err;
}

// ------------------------------------------------------------ in-process
// KVM's binary stats fd of a real vCPU: the names vireo reads are there.
TEST(BinaryStatsKvm, VcpuHasExitsAndHaltHistogram) {
    if (auto r = kvm_unavailable_reason(); !r.empty()) GTEST_SKIP() << r;
    auto kvm = KvmSystem::open();
    ASSERT_TRUE(kvm) << kvm.error();
    auto vm = Vm::create(*kvm);
    ASSERT_TRUE(vm) << vm.error();
    auto vcpu = Vcpu::create(*kvm, *vm, 0);
    ASSERT_TRUE(vcpu) << vcpu.error();
    if (kvm->check_extension(KVM_CAP_BINARY_STATS_FD) <= 0) GTEST_SKIP() << "no KVM_CAP_BINARY_STATS_FD";
    auto stats = BinaryStats::open(vcpu->fd());
    ASSERT_TRUE(stats) << stats.error();
    EXPECT_NE(stats->id().find("vcpu-0"), std::string::npos) << stats->id();
    ASSERT_NE(stats->find("exits"), nullptr);
    ASSERT_NE(stats->find("halt_wait_ns"), nullptr);
    const auto* hist = stats->find("halt_wait_hist");
    ASSERT_NE(hist, nullptr);
    EXPECT_EQ(hist->type(), uint32_t(KVM_STATS_TYPE_LOG_HIST));
    EXPECT_EQ(hist->size, 32);  // the bucket count vireo's histograms use too
    auto sample = stats->read();
    ASSERT_TRUE(sample) << sample.error();
    EXPECT_EQ(sample->values("halt_wait_hist").size(), 32u);
    EXPECT_TRUE(sample->value("exits"));
}

// The blk probe with io_uring requests tagged as a virtio-blk device's I/O
// thread tags them, and a KVM irqfd as the device's interrupt (irqfd ->
// kworker -> kvm_set_irq, as the I/O thread raises it).
class BlkProbe : public ::testing::Test {
protected:
    static constexpr uint32_t kGsi = 5;

    void SetUp() override {
        if (auto r = root_reason(); !r.empty()) GTEST_SKIP() << r;
        if (auto r = kvm_unavailable_reason(); !r.empty()) GTEST_SKIP() << r;
        auto kvm = KvmSystem::open();
        ASSERT_TRUE(kvm) << kvm.error();
        kvm_ = std::move(*kvm);
        auto vm = Vm::create(kvm_);
        ASSERT_TRUE(vm) << vm.error();
        vm_ = std::move(*vm);
        ASSERT_TRUE(vm_.create_x86_irqchip());
        irq_.reset(::eventfd(0, EFD_CLOEXEC));
        ASSERT_TRUE(irq_.valid());
        ASSERT_TRUE(vm_.add_irqfd(kGsi, irq_.get()));
        auto set = ProbeSet::start(ProbeMode::Auto, ProbeOptions{.vcpus = 1, .blk_devices = 1});
        ASSERT_TRUE(set) << set.error();
        probes_ = std::move(*set);
        if (!probes_->attached(Probe::Blk)) GTEST_SKIP() << "blk probe off: " << probes_->why_off(Probe::Blk);
        ASSERT_TRUE(probes_->add_blk_device(0, 0xd0000050, kGsi));
        ASSERT_EQ(io_uring_queue_init(64, &ring_, 0), 0);
        ring_ok_ = true;
        file_.reset(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
        ASSERT_TRUE(file_.valid());
    }
    void TearDown() override {
        if (ring_ok_) io_uring_queue_exit(&ring_);
    }

    // `n` tagged reads plus one untagged NOP (an eventfd read, say: not a
    // blk request), all completed.
    void io_batch(unsigned n) {
        for (unsigned i = 0; i < n; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            io_uring_prep_read(sqe, file_.get(), buf_, sizeof buf_, (next_id_ % 64) * 512);
            io_uring_sqe_set_data64(sqe, VIREO_BLK_USER_DATA(0, ++next_id_));
        }
        io_uring_sqe* other = io_uring_get_sqe(&ring_);
        io_uring_prep_nop(other);
        io_uring_sqe_set_data64(other, 0x1234);
        ASSERT_EQ(io_uring_submit_and_wait(&ring_, n + 1), int(n + 1));
        io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)++ seen;
        io_uring_cq_advance(&ring_, seen);
    }
    void interrupt() {
        uint64_t one = 1;
        ASSERT_EQ(::write(irq_.get(), &one, 8), 8);
        std::this_thread::sleep_for(5ms);  // the kworker injects it
    }
    static uint64_t total(const vireo_hist& h) {
        uint64_t t = 0;
        for (uint64_t b : h.bucket) t += b;
        return t;
    }

    KvmSystem kvm_;
    Vm vm_;
    UniqueFd irq_, file_;
    std::unique_ptr<ProbeSet> probes_;
    io_uring ring_{};
    bool ring_ok_ = false;
    char buf_[512];
    uint64_t next_id_ = 0;
};

// Every completed request is in the I/O-stage histogram exactly once, every
// interrupted one in the interrupt stage; untagged requests are ignored.
TEST_F(BlkProbe, CountsExactlyTheTaggedRequests) {
    constexpr unsigned kBatches = 10, kBatch = 10;
    for (unsigned b = 0; b < kBatches; ++b) {
        io_batch(kBatch);
        interrupt();  // the device raises its interrupt once per batch
    }
    vireo_blk_telemetry t{};
    probes_->read_blk(0, t);
    const uint64_t n = kBatches * kBatch;
    EXPECT_EQ(t.submitted, n);
    EXPECT_EQ(t.completed, n);
    EXPECT_EQ(t.failed, 0u);
    EXPECT_EQ(t.lost, 0u);
    EXPECT_EQ(total(t.submit_to_complete_hist), n);
    EXPECT_GT(t.submit_to_complete_ns, 0u);
    // No vCPU notified (no guest here): every request says so.
    EXPECT_EQ(t.no_notify, n);
    EXPECT_EQ(total(t.notify_to_submit_hist), 0u);
    EXPECT_EQ(t.interrupted, n) << "kvm_set_irq from the irqfd kworker";
    EXPECT_EQ(t.uninterrupted, 0u);
    EXPECT_EQ(total(t.complete_to_irq_hist), n);
}

// A guest that polls gets no interrupts: the completions waiting for one
// are capped at the newest 256, the rest counted as uninterrupted (no
// silent cap), and the next interrupt ends stage 3 of those 256.
TEST_F(BlkProbe, PollingGuestKeepsTheNewestCompletions) {
    for (unsigned b = 0; b < 10; ++b) io_batch(30);
    interrupt();
    vireo_blk_telemetry t{};
    probes_->read_blk(0, t);
    EXPECT_EQ(t.completed, 300u);
    EXPECT_EQ(t.uninterrupted, 300u - VIREO_BPF_BLK_RING);
    EXPECT_EQ(t.interrupted, uint64_t(VIREO_BPF_BLK_RING));
    EXPECT_EQ(total(t.complete_to_irq_hist), uint64_t(VIREO_BPF_BLK_RING));
}

}  // namespace
}  // namespace vireo::test
