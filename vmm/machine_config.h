// Everything needed to build one guest, as the command line (or, later, a
// host config file or the control socket) describes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpf/probe_set.h"
#include "vmm/devices/virtio/virtio_config.h"

namespace vireo {

// The IB700 watchdog (vmm/devices/ib700_watchdog.h); `timeout` overrides
// the one the guest writes.
struct WatchdogConfig {
    std::optional<std::chrono::milliseconds> timeout;
    bool operator==(const WatchdogConfig&) const = default;
};

struct MachineConfig {
    std::string name = "vm0";
    std::string kernel;
    std::string initrd;
    std::string cmdline;
    unsigned cpus = 1;
    uint64_t mem_bytes = 256ull << 20;
    std::string console = "stdio";
    bool hugepages = false;
    bool stats = false;  // print run statistics at exit
    // eBPF probes (bpf/): auto loads what this host allows and says once
    // what is off; on makes a probe that cannot run a start-up error.
    ProbeMode probes = ProbeMode::Auto;
    // Unpack an xz bzImage natively and boot its vmlinux (skips the guest's
    // own decompressor, slow under nested emulation).
    bool unpack_kernel = true;
    // virtio-mmio devices (vmm/devices/virtio/): disks in command-line
    // order, then the balloon.
    std::vector<DiskConfig> disks;
    std::optional<BalloonConfig> balloon;
    // Also list them as virtio_mmio.device= on the kernel command line (for
    // kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES; ACPI always has them).
    bool virtio_cmdline = false;
    std::optional<WatchdogConfig> watchdog;
};

}  // namespace vireo
