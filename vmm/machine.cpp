#include "vmm/machine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>

#include <fmt/format.h>

#include "bpf/telemetry_report.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vireo/layout.h"
#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/kernel_loader.h"
#include "vmm/arch/x86/vcpu_init.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/acpi_reset.h"
#include "vmm/devices/boot_marker.h"
#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/console.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/ib700_watchdog.h"
#include "vmm/devices/ignored_ports.h"
#include "vmm/devices/kvm_irq_line.h"
#include "vmm/devices/pvpanic.h"
#include "vmm/devices/serial_8250.h"
#include "vmm/devices/test_ports.h"
#include "vmm/log.h"
#include "vmm/security/privileges.h"

namespace vireo {

namespace {

BuildError bad_input(std::string message) { return {true, std::move(message)}; }
BuildError host_error(std::string message) { return {false, std::move(message)}; }

long long elapsed_ms(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}

std::string vcpu_thread_name(unsigned index, const std::string& guest) {
    std::string name = fmt::format("CPU {}/g{}", index, guest);
    if (name.size() > 15) name.resize(15);
    return name;
}

}  // namespace

Machine::~Machine() {
    for (auto& r : runners_) r->kick();
    for (auto& r : runners_) r->join();
    runners_.clear();
    if (virtio_) virtio_->stop();
}

std::expected<std::unique_ptr<Machine>, BuildError> Machine::build(const MachineConfig& config,
                                                                   std::chrono::steady_clock::time_point start,
                                                                   std::unique_ptr<ProbeSet> reused_probes) {
    // The eBPF probes load (~30 ms: kernel BTF, the verifier) while the input
    // is checked and the VM built; they are in place before any vCPU runs.
    // (A pair, not std::expected, through the future: g++ 12 warns falsely
    // about the latter's destructor there.)
    std::future<std::pair<std::unique_ptr<ProbeSet>, std::string>> probes_loading;
    // After `--user` dropped every capability the probes cannot load again:
    // a guest rebuilt for a restart runs without them (vmm/security/privileges.h).
    if (reused_probes) {
        // A restart: the same guest's probes, already loaded and attached.
        reused_probes->reset_counters();
        probes_loading = std::async(std::launch::deferred, [p = std::move(reused_probes)]() mutable {
            return std::pair(std::move(p), std::string());
        });
    } else if (config.probes != ProbeMode::Off && security::privileges_dropped())
        log_info("guest {}: eBPF probes are off after a restart under --user (no CAP_BPF/CAP_PERFMON)", config.name);
    else if (config.probes != ProbeMode::Off)
        probes_loading = std::async(std::launch::async, [mode = config.probes, opts = ProbeOptions{
            .vcpus = config.cpus, .blk_devices = unsigned(config.disks.size())}] {
            auto set = ProbeSet::start(mode, opts);
            return set ? std::pair(std::move(*set), std::string()) : std::pair(std::unique_ptr<ProbeSet>(), set.error());
        });
    // Everything the user gave us is checked before KVM is touched.
    auto console_spec = parse_console_spec(config.console);
    if (!console_spec) return std::unexpected(bad_input(console_spec.error()));
    auto image = read_kernel_image(config.kernel, config.mem_bytes, config.unpack_kernel);
    if (!image) return std::unexpected(bad_input(image.error()));
    log_debug("kernel read at {} ms", elapsed_ms(start));
    BootInputs boot;
    boot.cmdline = config.cmdline;
    boot.cpus = config.cpus;
    boot.mem_size = config.mem_bytes;
    if (!config.initrd.empty()) {
        auto initrd = read_boot_file("--initrd", config.initrd, low_ram_end(config.mem_bytes));
        if (!initrd) return std::unexpected(bad_input(initrd.error()));
        boot.initrd = std::move(*initrd);
    }
    // Disk images are opened and locked here, before KVM: a disk another
    // guest holds is bad input and nothing starts.
    auto virtio = VirtioDevices::prepare(config.disks, config.balloon);
    if (!virtio) return std::unexpected(bad_input(virtio.error()));
    boot.virtio = (*virtio)->descriptors();
    if (config.virtio_cmdline && !(*virtio)->empty())
        boot.cmdline += (boot.cmdline.empty() ? "" : " ") + (*virtio)->cmdline_devices();

    std::unique_ptr<Machine> m(new Machine());
    m->config_ = config;
    m->start_ = start;
    m->virtio_ = std::move(*virtio);
    auto kvm = KvmSystem::open();
    if (!kvm) return std::unexpected(host_error(kvm.error()));
    m->kvm_ = std::move(*kvm);
    if (config.cpus > unsigned(m->kvm_.max_vcpus()))
        return std::unexpected(bad_input(fmt::format("--cpus: {} is more than this KVM allows ({})", config.cpus,
                                                     m->kvm_.max_vcpus())));

    std::vector<GuestMemory::Layout> layout;
    for (const auto& r : guest_ram_regions(config.mem_bytes)) layout.push_back({r.guest_addr, r.size});
    auto memory = GuestMemory::create(layout, config.hugepages);
    if (!memory) return std::unexpected(host_error(memory.error()));
    m->memory_ = std::move(*memory);
    auto vm = Vm::create(m->kvm_);
    if (!vm) return std::unexpected(host_error(vm.error()));
    m->vm_ = std::move(*vm);
    if (auto r = m->vm_.map_memory(m->memory_); !r) return std::unexpected(host_error(r.error()));
    if (auto r = m->vm_.create_x86_irqchip(); !r) return std::unexpected(host_error(r.error()));

    for (unsigned i = 0; i < config.cpus; ++i) {
        auto vcpu = Vcpu::create(m->kvm_, m->vm_, i);
        if (!vcpu) return std::unexpected(host_error(vcpu.error()));
        m->vcpu_fds_.push_back(std::move(*vcpu));
    }
    boot.tsc_khz = m->vcpu_fds_[0].tsc_khz();

    auto plan = load_kernel(*image, m->memory_, boot);
    if (!plan) return std::unexpected(bad_input(plan.error()));
    for (auto& vcpu : m->vcpu_fds_) {
        const EntryState* entry = nullptr;
        if (vcpu.index() < plan->entries.size()) entry = &plan->entries[vcpu.index()];
        if (auto r = init_vcpu(m->kvm_, vcpu, config.cpus, entry); !r) return std::unexpected(host_error(r.error()));
    }

    auto console = Console::open(*console_spec, m->stop_);
    if (!console) return std::unexpected(bad_input(console.error()));
    m->console_ = std::move(*console);
    if (auto r = m->add_devices(); !r) return std::unexpected(r.error());
    // KVM's per-vCPU binary stats (Linux 5.14+), read without BPF.
    for (auto& vcpu : m->vcpu_fds_) {
        auto stats = BinaryStats::open(vcpu.fd());
        if (!stats) log_debug("vCPU {}: no binary stats: {}", vcpu.index(), stats.error());
        m->vcpu_stats_.push_back(stats ? std::optional<BinaryStats>(std::move(*stats)) : std::nullopt);
    }
    m->can_detect_hangs_ = !m->vcpu_stats_.empty() && std::all_of(m->vcpu_stats_.begin(), m->vcpu_stats_.end(), [](const auto& s) {
        return s && s->find("halt_wakeup") && s->find("blocking");
    });
    if (probes_loading.valid()) {
        auto [probes, error] = probes_loading.get();
        if (!error.empty()) return std::unexpected(host_error(error));
        m->probes_ = std::move(probes);
        // Once per process: a host running many guests says it once.
        static std::atomic<bool> noticed{false};
        if (!m->probes_->notice().empty() && !noticed.exchange(true)) log_warn("{}", m->probes_->notice());
        // Disks are the first virtio devices (VirtioDevices): disk i is
        // window i; the guest notifies on its QueueNotify register.
        const auto descs = m->virtio_->descriptors();
        for (unsigned i = 0; i < config.disks.size() && i < descs.size() && m->probes_->attached(Probe::Blk); ++i)
            if (auto r = m->probes_->add_blk_device(i, descs[i].base + virtio::reg::QueueNotify, descs[i].gsi); !r) log_warn("{}", r.error());
    }
    log_info("guest {}: {} vCPU, {} MiB, kernel {} ({})", config.name, config.cpus, config.mem_bytes >> 20,
             config.kernel, image->describe());
    log_debug("guest {} built at {} ms", config.name, elapsed_ms(start));
    return m;
}

std::expected<void, BuildError> Machine::add_devices() {
    auto irq = [&](uint32_t gsi) -> InterruptLine& {
        irq_lines_.push_back(std::make_unique<KvmIrqLine>(vm_, gsi));
        return *irq_lines_.back();
    };
    Console* console = console_.get();
    serial_ = std::make_shared<Serial8250>("com1", irq(VIREO_SERIAL_IRQ),
                                           [console](std::span<const uint8_t> bytes) { console->write(bytes); });
    auto& serial = serial_;
    uint64_t low = low_ram_end(config_.mem_bytes);
    uint64_t high = config_.mem_bytes > low ? config_.mem_bytes - low : 0;
    acpi_ = std::make_shared<AcpiPm>(stop_, irq(VIREO_ACPI_SCI_IRQ));
    auto& acpi = acpi_;
    boot_marker_ = std::make_shared<BootMarker>(start_);
    test_ports_ = std::make_shared<TestPorts>(stop_);

    struct Pio {
        uint64_t base, len;
        std::shared_ptr<Device> dev;
    };
    const Pio pio[] = {
        {VIREO_SERIAL_COM1, Serial8250::kWindowSize, serial},
        {I8042::kBase, I8042::kWindowSize, std::make_shared<I8042>(stop_, &irq(1))},
        {CmosRtc::kBase, CmosRtc::kWindowSize, std::make_shared<CmosRtc>(low, high)},
        {VIREO_PVPANIC_PORT, Pvpanic::kWindowSize, std::make_shared<Pvpanic>(stop_)},
        {TestPorts::kBase, TestPorts::kWindowSize, test_ports_},
        {AcpiPm::kBase, AcpiPm::kWindowSize, acpi},
        {AcpiResetRegister::kPort, AcpiResetRegister::kWindowSize, std::make_shared<AcpiResetRegister>(stop_)},
        {IgnoredPorts::kPostPort, IgnoredPorts::kPostPortWindowSize, std::make_shared<IgnoredPorts>("post-port")},
    };
    for (const auto& p : pio)
        if (!pio_.add(p.base, p.len, p.dev))
            return std::unexpected(host_error(fmt::format("pio bus: {} at {:#x} overlaps another device", p.dev->name(), p.base)));
    if (config_.watchdog) {
        watchdog_ = std::make_shared<Ib700Watchdog>(config_.watchdog->timeout);
        if (!pio_.add(Ib700Watchdog::kBase, Ib700Watchdog::kWindowSize, watchdog_))
            return std::unexpected(host_error("pio bus: the watchdog overlaps another device"));
    }
    if (!mmio_.add(VIREO_BOOT_MARKER_ADDR, BootMarker::kWindowSize, boot_marker_))
        return std::unexpected(host_error("mmio bus: boot marker overlaps another device"));
    if (auto r = virtio_->create(vm_, memory_, mmio_, stop_, config_.name); !r) return std::unexpected(host_error(r.error()));
    pio_.freeze();
    mmio_.freeze();
    return {};
}

void Machine::start() {
    VcpuRunner::install_kick_handler();
    auto* serial = serial_.get();
    if (auto r = console_->start_input([serial](std::span<const uint8_t> bytes) { serial->receive(bytes); }); !r)
        log_warn("console input: {}", r.error());
    virtio_->start();  // the I/O thread, before any vCPU can notify
    for (auto& vcpu : vcpu_fds_) {
        runners_.push_back(std::make_unique<VcpuRunner>(vcpu, pio_, mmio_, stop_, vcpu_thread_name(vcpu.index(), config_.name)));
        if (ProbeSet* probes = probes_.get())
            runners_.back()->on_thread_start([probes, slot = vcpu.index()](pid_t tid) {
                if (auto r = probes->add_vcpu(tid, slot); !r) log_warn("{}", r.error());
            });
        runners_.back()->start();
    }
}

bool Machine::press_power_button() { return acpi_ && acpi_->press_power_button(); }

StopRequest Machine::halt() {
    for (auto& r : runners_) r->kick();
    for (auto& r : runners_) r->join();
    virtio_->stop();  // after the vCPUs: no notification can come any more
    console_->stop_input();
    serial_->flush();
    return stop_.request().value_or(StopRequest{StopReason::HostError, 0, "no stop reason"});
}

void Machine::report_stop(const StopRequest& req) const {
    int status = exit_status_for(req);
    std::string detail = req.detail.empty() ? "" : ": " + req.detail;
    if (status == 0 || req.reason == StopReason::TestExit)
        log_info("guest {} stopped ({}{}), exit status {}", config_.name, to_string(req.reason), detail, status);
    else
        log_error("guest {} stopped ({}{}), exit status {}", config_.name, to_string(req.reason), detail, status);
    if (config_.stats) print_stats();
}

void Machine::print_stats() const {
    for (const auto& r : runners_) {
        const auto& c = r->counters();
        log_info("stats: vCPU {} ({}): {} KVM_RUN, {} exits: io {}, mmio {}, intr {}, other {}", &r - &runners_[0],
                 r->thread_name(), c.runs.load(), c.total(), c.by_reason[KVM_EXIT_IO].load(),
                 c.by_reason[KVM_EXIT_MMIO].load(), c.by_reason[KVM_EXIT_INTR].load(),
                 c.total() - c.by_reason[KVM_EXIT_IO].load() - c.by_reason[KVM_EXIT_MMIO].load() -
                     c.by_reason[KVM_EXIT_INTR].load());
    }
    log_info("stats: unhandled accesses: pio {}, mmio {}", pio_.unhandled(), mmio_.unhandled());
    if (!runners_.empty() && runners_[0]->first_pio() != std::chrono::steady_clock::time_point{}) {
        auto first = runners_[0]->first_pio();
        // Absolute CLOCK_MONOTONIC too, so a benchmark can measure from
        // before exec (steady_clock is CLOCK_MONOTONIC on Linux).
        log_info("stats: first_pio_us={} first_pio_monotonic_ns={}",
                 std::chrono::duration_cast<std::chrono::microseconds>(first - start_).count(),
                 std::chrono::duration_cast<std::chrono::nanoseconds>(first.time_since_epoch()).count());
    }
    if (auto us = boot_marker_->boot_complete_us()) log_info("stats: boot_complete_us={}", *us);
    virtio_->print_stats();
    log_info("stats: probes: {}", probes_ ? probes_->summary() : std::string("off (--probes off)"));
    for (const auto& line : format_telemetry(telemetry())) log_info("stats: {}", line);
    if (probes_) {
        // Run time is only counted while kernel.bpf_stats_enabled=1.
        auto cost = probes_->cost();
        if (cost.run_ns)
            log_info("stats: probe_cost: runs={} run_ns={} ns_per_run={:.1f}", cost.runs, cost.run_ns,
                     cost.runs ? double(cost.run_ns) / double(cost.runs) : 0.0);
    }
}

Telemetry Machine::telemetry() const {
    Telemetry t;
    fmt::format_to_n(t.guest.name, sizeof t.guest.name - 1, "{}", config_.name);
    t.vcpus.resize(vcpu_fds_.size());
    for (size_t i = 0; i < vcpu_fds_.size(); ++i) {
        auto& v = t.vcpus[i];
        v.vcpu = uint32_t(i);
        if (i < runners_.size()) {
            v.tid = runners_[i]->tid();
            add_vmm_counters(runners_[i]->counters(), v);
        }
        if (probes_) probes_->read_vcpu(unsigned(i), v);
        if (i < vcpu_stats_.size() && vcpu_stats_[i])
            if (auto sample = vcpu_stats_[i]->read()) add_binary_stats(*sample, v);
    }
    if (probes_ && probes_->attached(Probe::Blk)) {
        t.blk.resize(config_.disks.size());
        for (size_t i = 0; i < t.blk.size(); ++i) probes_->read_blk(unsigned(i), t.blk[i]);
    }
    finish_guest(t);
    return t;
}

HealthSample Machine::health() const {
    HealthSample h;
    bool all_busy = !runners_.empty() && can_detect_hangs();
    for (size_t i = 0; i < runners_.size(); ++i) {
        const VcpuRunner& r = *runners_[i];
        // Exits vireo handled (not the kicks: those are vireo's doing).
        h.progress += r.counters().total();
        bool blocking = false;
        if (i < vcpu_stats_.size() && vcpu_stats_[i])
            if (auto sample = vcpu_stats_[i]->read()) {
                // Interrupts and NMIs KVM delivered, and wake-ups from halt:
                // a guest kernel that takes its timer tick is not hung. And
                // page faults KVM fixed: a guest faulting in memory it had
                // not touched is working, though it may not exit to vireo
                // for seconds (each fault is a nested page fault costing
                // ~0.2 ms under TCG in the QEMU harness: 96 MiB took > 5 s).
                for (auto name : {"halt_wakeup", "irq_injections", "nmi_injections", "pf_fixed"})
                    h.progress += sample->value(name).value_or(0);
                blocking = sample->value("blocking").value_or(0) != 0;
            }
        if (!r.in_guest() || blocking || r.parked()) all_busy = false;
    }
    h.busy_in_guest = all_busy;
    return h;
}

std::unique_ptr<ProbeSet> Machine::take_probes() {
    if (probes_)
        for (const auto& r : runners_)
            if (r->tid() > 0) probes_->remove_thread(r->tid());
    return std::move(probes_);
}

}  // namespace vireo

