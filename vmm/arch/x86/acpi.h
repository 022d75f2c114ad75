// ACPI tables (ACPI 6.x, chapter 5) for a PC-like vireo machine: RSDP, XSDT
// (and an RSDT for acpi=rsdt), FADT with a FACS, MADT and a DSDT.
//
// Why ACPI at all: Debian's stock kernel finds virtio-mmio devices only
// through DSDT entries (_HID "LNRO0005"), and ACPI S5 gives the guest a clean
// poweroff. The fixed hardware (PM1a event/control, PM timer, reset register)
// is vireo's own PIO block from include/vireo/layout.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "vmm/arch/x86/aml.h"

namespace vireo {

struct VirtioMmioDesc {
    uint64_t base;  // guest-physical, below 4 GiB
    uint64_t size;  // the register window, VIREO_VIRTIO_MMIO_SIZE
    uint32_t gsi;   // edge-triggered, active-high I/O APIC input
};

struct AcpiConfig {
    unsigned ncpus = 1;
    // Published as \_SB.VRxx (xx = index in hex): _HID "LNRO0005", _UID =
    // index, _CRS = Memory32Fixed(base, size) + Interrupt {gsi}.
    std::vector<VirtioMmioDesc> virtio;
    // Publish the pvpanic device (_HID "QEMU0001", I/O port VIREO_PVPANIC_PORT).
    bool pvpanic = true;
};

// I/O APIC inputs the tables give to platform devices (PIT via its override,
// keyboard, cascade, COM1, RTC, SCI); a virtio GSI must not use them.
bool gsi_reserved_by_platform(uint32_t gsi);
inline constexpr uint32_t kIoApicPins = 24;

// The DSDT's AML body (without the table header): exposed for tests.
std::expected<aml::Bytes, std::string> build_dsdt_aml(const AcpiConfig& config);

// Writes all tables into `dst` (VIREO_ACPI_SIZE bytes, seen by the guest at
// `guest_addr` = VIREO_ACPI_ADDR) with the RSDP first, at `guest_addr`, so
// the kernel's scan of 0xe0000-0xfffff finds it. All checksums valid.
// Returns the bytes used; fails, writing nothing, on a bad config (CPU
// count, a virtio window above 4 GiB, a GSI outside the I/O APIC or shared
// with a platform device or another virtio device) or if the tables do not
// fit in `dst`.
std::expected<size_t, std::string> write_acpi_tables(std::span<uint8_t> dst, uint64_t guest_addr,
                                                     const AcpiConfig& config);

}  // namespace vireo
