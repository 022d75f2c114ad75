// All virtio-mmio devices of one machine and the I/O thread that serves
// them, built in two steps so bad input never half-starts a guest:
//
//  prepare()  before KVM is touched: opens and locks every disk image,
//             places the devices (window i at VIREO_VIRTIO_MMIO_BASE +
//             i * 4 KiB, the next free GSI from VIREO_VIRTIO_IRQ_BASE that
//             no platform device uses). Errors are bad input (exit 2).
//  create()   once the VM and guest RAM exist: the I/O thread "io/g<name>",
//             the devices, one ioeventfd per queue and one irqfd per device,
//             the windows on the MMIO bus.
//
// Disks come first, in command-line order, then the balloon: the guest's
// DSDT lists them in that order, so the first --disk is Linux's vda.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vmm/arch/x86/acpi.h"
#include "vmm/devices/io_bus.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/devices/virtio/blk/blk.h"
#include "vmm/devices/virtio/blk/disk_image.h"
#include "vmm/devices/virtio/irqfd_line.h"
#include "vmm/devices/virtio/virtio_config.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/io/io_thread.h"
#include "vmm/kvm/vm.h"

namespace vireo {

class VirtioDevices {
public:
    static std::expected<std::unique_ptr<VirtioDevices>, std::string> prepare(const std::vector<DiskConfig>& disks,
                                                                      const std::optional<BalloonConfig>& balloon);
    ~VirtioDevices();

    bool empty() const { return slots_.empty(); }
    // For ACPI (DSDT LNRO0005 entries) and the test guest's boot info.
    std::vector<VirtioMmioDesc> descriptors() const;
    // "virtio_mmio.device=4K@0xd0000000:5 ..." for kernels built with
    // CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (Debian's is not: ACPI is its way).
    std::string cmdline_devices() const;

    std::expected<void, std::string> create(const Vm& vm, const GuestMemory& mem, IoBus& mmio, const StopSink& stop,
                                            const std::string& guest_name);
    void start();
    void stop();  // idempotent; after it no device code runs

    VirtioBalloon* balloon() { return balloon_; }
    const std::vector<std::shared_ptr<VirtioMmio>>& transports() const { return transports_; }
    const IoThread* io_thread() const { return io_.get(); }
    // ioeventfd registrations KVM refused (notifies then take the vCPU path).
    unsigned ioeventfd_failures() const { return ioeventfd_failures_; }
    void print_stats() const;

private:
    struct Slot {
        VirtioMmioDesc desc;
        std::unique_ptr<DiskImage> disk;  // null for the balloon
        bool balloon = false;
    };
    VirtioDevices() = default;

    std::vector<Slot> slots_;
    BalloonConfig balloon_config_;
    std::unique_ptr<IoThread> io_;
    std::vector<std::unique_ptr<InterruptLine>> lines_;
    std::vector<std::shared_ptr<VirtioMmio>> transports_;
    std::vector<VirtioBlk*> blks_;
    VirtioBalloon* balloon_ = nullptr;
    unsigned ioeventfd_failures_ = 0;
    unsigned irqfd_failures_ = 0;
};

}  // namespace vireo
