#include "vmm/arch/x86/acpi.h"

#include <fmt/format.h>

#include <algorithm>

#include "vireo/layout.h"
#include "vmm/arch/x86/bytes.h"

namespace vireo {

namespace {

using x86::ByteWriter;

constexpr size_t kHeaderSize = 36;
constexpr size_t kRsdpSize = 36;
constexpr size_t kFadtSize = 276;  // revision 6
constexpr size_t kFacsSize = 64;
constexpr size_t kChecksumOffset = 9;
constexpr size_t kLengthOffset = 4;

constexpr char kOemId[] = "VIREO";
constexpr char kOemTableId[] = "VIREOVM";
constexpr char kCreatorId[] = "VIRO";

// Generic Address Structure address space ids and access sizes.
constexpr uint8_t kSpaceSystemIo = 1;
constexpr uint8_t kAccessByte = 1;
constexpr uint8_t kAccessWord = 2;
constexpr uint8_t kAccessDword = 3;

// FADT "Fixed ACPI Description Table Flags".
constexpr uint32_t kFadtWbinvd = 1u << 0;
constexpr uint32_t kFadtProcC1 = 1u << 2;
// PWR_BUTTON (bit 4) stays clear: the power button is the fixed-feature one
// in PM1 (PWRBTN_STS/EN), which is how vireo asks a guest to shut down.
constexpr uint32_t kFadtSlpButton = 1u << 5;  // no sleep button at all
constexpr uint32_t kFadtResetRegSup = 1u << 10;
// IA-PC boot architecture flags. "CMOS RTC not present" (bit 5) stays clear:
// there is an RTC at 0x70, and without one the kernel stalls in rtc_cmos.
constexpr uint16_t kBootArchLegacyDevices = 1u << 0;
constexpr uint16_t kBootArch8042 = 1u << 1;
constexpr uint16_t kBootArchNoVga = 1u << 2;

constexpr uint8_t kRtcCentury = 0x32;  // the conventional CMOS index, which vireo's RTC implements
constexpr uint16_t kResetPort = 0xcf9;
constexpr uint8_t kResetValue = 0x06;  // full reset via the PCI reset control register

// MADT.
constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint8_t kMadtLapic = 0;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint8_t kMadtIntSrcOverride = 2;
constexpr uint8_t kMadtLapicNmi = 4;
// MPS INTI flags: polarity bits 0-1 (1 = active high), trigger bits 2-3 (3 = level).
constexpr uint16_t kIntiConforming = 0;
constexpr uint16_t kIntiLevelHigh = 0x1 | (0x3 << 2);
constexpr unsigned kMaxCpus = 254;  // xAPIC ids; the I/O APIC takes id ncpus

// The virtio windows become Memory32Fixed resources and 32-bit pointers.
constexpr uint64_t k4GiB = 1ull << 32;

std::unexpected<std::string> fail(std::string msg) { return std::unexpected(std::move(msg)); }

// The common 36-byte header; length and checksum are patched by finish().
ByteWriter table_header(const char* signature, uint8_t revision) {
    ByteWriter w;
    w.text(signature, 4);
    w.u32(0);
    w.u8(revision);
    w.u8(0);
    w.text(kOemId, 6);
    w.text(kOemTableId, 8);
    w.u32(1);  // OEM revision
    w.text(kCreatorId, 4);
    w.u32(1);  // creator revision
    return w;
}

std::vector<uint8_t> finish(ByteWriter w) {
    w.patch_u32(kLengthOffset, uint32_t(w.size()));
    w.patch_u8(kChecksumOffset, x86::checksum_byte(w.bytes()));
    return std::move(w.bytes());
}

void gas(ByteWriter& w, uint8_t space, uint8_t bit_width, uint8_t access, uint64_t address) {
    w.u8(space);
    w.u8(bit_width);
    w.u8(0);  // bit offset
    w.u8(access);
    w.u64(address);
}

std::vector<uint8_t> build_madt(unsigned ncpus) {
    ByteWriter w = table_header("APIC", 4);
    w.u32(uint32_t(VIREO_LAPIC_ADDR));
    w.u32(kMadtPcatCompat);  // dual 8259s present: the kernel masks them
    for (unsigned i = 0; i < ncpus; ++i) {
        w.u8(kMadtLapic);
        w.u8(8);
        w.u8(uint8_t(i));  // ACPI processor UID
        w.u8(uint8_t(i));  // APIC id
        w.u32(1);          // enabled
    }
    w.u8(kMadtIoApic);
    w.u8(12);
    w.u8(uint8_t(ncpus));
    w.u8(0);
    w.u32(uint32_t(VIREO_IOAPIC_ADDR));
    w.u32(0);  // GSI base
    const struct {
        uint8_t irq;
        uint32_t gsi;
        uint16_t flags;
    } overrides[] = {{0, 2, kIntiConforming}, {VIREO_ACPI_SCI_IRQ, VIREO_ACPI_SCI_IRQ, kIntiLevelHigh}};
    for (const auto& o : overrides) {
        w.u8(kMadtIntSrcOverride);
        w.u8(10);
        w.u8(0);  // bus: ISA
        w.u8(o.irq);
        w.u32(o.gsi);
        w.u16(o.flags);
    }
    w.u8(kMadtLapicNmi);
    w.u8(6);
    w.u8(0xff);  // all processors
    w.u16(kIntiConforming);
    w.u8(1);     // LINT1
    return finish(std::move(w));
}

std::vector<uint8_t> build_facs() {
    ByteWriter w;
    w.text("FACS", 4);
    w.u32(kFacsSize);
    w.u32(0);  // hardware signature
    w.u32(0);  // firmware waking vector
    w.u32(0);  // global lock
    w.u32(0);  // flags
    w.u64(0);  // X firmware waking vector
    w.u8(2);   // version
    w.zeros(3);
    w.u32(0);  // OSPM flags
    w.zeros(24);
    return std::move(w.bytes());
}

std::vector<uint8_t> build_fadt(uint64_t facs_addr, uint64_t dsdt_addr) {
    ByteWriter w = table_header("FACP", 6);
    w.u32(uint32_t(facs_addr));  // FIRMWARE_CTRL
    w.u32(uint32_t(dsdt_addr));  // DSDT
    w.u8(0);                     // reserved
    w.u8(0);                     // preferred PM profile: unspecified
    w.u16(VIREO_ACPI_SCI_IRQ);   // SCI_INT
    w.u32(0);                    // SMI_CMD 0: ACPI is always enabled, no SMM handshake
    w.u8(0);                     // ACPI_ENABLE
    w.u8(0);                     // ACPI_DISABLE
    w.u8(0);                     // S4BIOS_REQ
    w.u8(0);                     // PSTATE_CNT
    w.u32(VIREO_ACPI_PM1A_EVT);  // PM1a_EVT_BLK
    w.u32(0);                    // PM1b_EVT_BLK
    w.u32(VIREO_ACPI_PM1A_CNT);  // PM1a_CNT_BLK
    w.u32(0);                    // PM1b_CNT_BLK
    w.u32(0);                    // PM2_CNT_BLK
    w.u32(VIREO_ACPI_PM_TMR);    // PM_TMR_BLK
    w.u32(0);                    // GPE0_BLK
    w.u32(0);                    // GPE1_BLK
    w.u8(4);                     // PM1_EVT_LEN
    w.u8(2);                     // PM1_CNT_LEN
    w.u8(0);                     // PM2_CNT_LEN
    w.u8(4);                     // PM_TMR_LEN
    w.u8(0);                     // GPE0_BLK_LEN
    w.u8(0);                     // GPE1_BLK_LEN
    w.u8(0);                     // GPE1_BASE
    w.u8(0);                     // CST_CNT
    w.u16(101);                  // P_LVL2_LAT > 100: no C2
    w.u16(1001);                 // P_LVL3_LAT > 1000: no C3
    w.u16(0);                    // FLUSH_SIZE
    w.u16(0);                    // FLUSH_STRIDE
    w.u8(0);                     // DUTY_OFFSET
    w.u8(0);                     // DUTY_WIDTH
    w.u8(0);                     // DAY_ALRM
    w.u8(0);                     // MON_ALRM
    w.u8(kRtcCentury);           // CENTURY: the CMOS index holding the century
    w.u16(kBootArchLegacyDevices | kBootArch8042 | kBootArchNoVga);  // IAPC_BOOT_ARCH
    w.u8(0);                                                          // reserved
    // The PM timer is declared 24-bit (TMR_VAL_EXT clear): always correct,
    // whether the device counts 24 or 32 bits.
    w.u32(kFadtWbinvd | kFadtProcC1 | kFadtSlpButton | kFadtResetRegSup);
    gas(w, kSpaceSystemIo, 8, kAccessByte, kResetPort);  // RESET_REG
    w.u8(kResetValue);
    w.u16(0);  // ARM_BOOT_ARCH
    w.u8(0);   // FADT minor version: 6.0
    w.u64(facs_addr);  // X_FIRMWARE_CTRL
    w.u64(dsdt_addr);  // X_DSDT
    gas(w, kSpaceSystemIo, 32, kAccessWord, VIREO_ACPI_PM1A_EVT);  // X_PM1a_EVT_BLK: 16-bit status, enable
    gas(w, 0, 0, 0, 0);                                            // X_PM1b_EVT_BLK
    gas(w, kSpaceSystemIo, 16, kAccessWord, VIREO_ACPI_PM1A_CNT);  // X_PM1a_CNT_BLK
    gas(w, 0, 0, 0, 0);                                            // X_PM1b_CNT_BLK
    gas(w, 0, 0, 0, 0);                                            // X_PM2_CNT_BLK
    gas(w, kSpaceSystemIo, 32, kAccessDword, VIREO_ACPI_PM_TMR);   // X_PM_TMR_BLK
    gas(w, 0, 0, 0, 0);                                            // X_GPE0_BLK
    gas(w, 0, 0, 0, 0);                                            // X_GPE1_BLK
    gas(w, 0, 0, 0, 0);                                            // SLEEP_CONTROL_REG (hardware-reduced only)
    gas(w, 0, 0, 0, 0);                                            // SLEEP_STATUS_REG
    w.text("VIREO", 8, '\0');                                      // hypervisor vendor identity
    return finish(std::move(w));
}

std::vector<uint8_t> build_pointer_table(const char* signature, std::span<const uint64_t> addrs, bool wide) {
    ByteWriter w = table_header(signature, 1);
    for (uint64_t a : addrs) {
        if (wide) w.u64(a);
        else w.u32(uint32_t(a));
    }
    return finish(std::move(w));
}

std::vector<uint8_t> build_rsdp(uint64_t rsdt_addr, uint64_t xsdt_addr) {
    ByteWriter w;
    w.text("RSD PTR ", 8);
    w.u8(0);  // checksum of the first 20 bytes (ACPI 1.0 part)
    w.text(kOemId, 6);
    w.u8(2);  // revision: ACPI 2.0+ structure with the XSDT
    w.u32(uint32_t(rsdt_addr));
    w.u32(kRsdpSize);
    w.u64(xsdt_addr);
    w.u8(0);  // extended checksum, over all 36 bytes
    w.zeros(3);
    w.patch_u8(8, x86::checksum_byte(std::span(w.bytes()).first(20)));
    w.patch_u8(32, x86::checksum_byte(w.bytes()));
    return std::move(w.bytes());
}

std::expected<void, std::string> check_config(const AcpiConfig& c) {
    if (c.ncpus == 0) return fail("acpi: no CPUs");
    if (c.ncpus > kMaxCpus)
        return fail(fmt::format("acpi: {} CPUs, more than the {} xAPIC ids allow", c.ncpus, kMaxCpus));
    if (c.virtio.size() > 256) return fail(fmt::format("acpi: {} virtio-mmio devices, at most 256", c.virtio.size()));
    for (size_t i = 0; i < c.virtio.size(); ++i) {
        const VirtioMmioDesc& d = c.virtio[i];
        if (d.size == 0 || d.base >= k4GiB || d.size > k4GiB - d.base)
            return fail(fmt::format("acpi: virtio-mmio device {} window [0x{:x}, +0x{:x}) is empty or not below "
                                    "4 GiB",
                                    i, d.base, d.size));
        if (d.gsi >= kIoApicPins)
            return fail(fmt::format("acpi: virtio-mmio device {} uses GSI {}, the I/O APIC has {} pins", i, d.gsi,
                                    kIoApicPins));
        if (gsi_reserved_by_platform(d.gsi))
            return fail(fmt::format("acpi: virtio-mmio device {} uses GSI {}, which a platform device (PIT, "
                                    "keyboard, cascade, COM1, RTC or SCI) already uses",
                                    i, d.gsi));
        for (size_t j = 0; j < i; ++j) {
            const VirtioMmioDesc& e = c.virtio[j];
            if (e.gsi == d.gsi)
                return fail(fmt::format("acpi: virtio-mmio devices {} and {} share GSI {}", j, i, d.gsi));
            if (d.base < e.base + e.size && e.base < d.base + d.size)
                return fail(fmt::format("acpi: virtio-mmio device windows {} and {} overlap", j, i));
        }
    }
    return {};
}

}  // namespace

bool gsi_reserved_by_platform(uint32_t gsi) {
    // 0 and 2: the PIT (IRQ0 is overridden to GSI 2); 8: the CMOS RTC.
    return gsi == 0 || gsi == 1 || gsi == 2 || gsi == VIREO_SERIAL_IRQ || gsi == 8 || gsi == VIREO_ACPI_SCI_IRQ;
}

std::expected<aml::Bytes, std::string> build_dsdt_aml(const AcpiConfig& config) {
    if (auto ok = check_config(config); !ok) return std::unexpected(ok.error());
    using namespace aml;
    // \_S5: SLP_TYPa, SLP_TYPb, then two reserved values; the kernel writes
    // SLP_TYPa | SLP_EN to PM1a_CNT to power off.
    Bytes body = name("\\_S5", package({integer(VIREO_ACPI_S5_TYPE), integer(VIREO_ACPI_S5_TYPE), integer(0),
                                        integer(0)}));
    Bytes sb = join({
        device("COM1", join({name("_HID", eisa_id("PNP0501")), name("_UID", integer(0)),
                             name("_CRS", resource_template({io(VIREO_SERIAL_COM1, VIREO_SERIAL_COM1, 1, 8),
                                                             irq_no_flags(VIREO_SERIAL_IRQ)}))})),
        // i8042: the keyboard port only; without a PNP0F13 the kernel
        // skips the AUX (mouse) port, which vireo does not emulate.
        device("PS2K", join({name("_HID", eisa_id("PNP0303")),
                             name("_CRS", resource_template({io(0x60, 0x60, 1, 1), io(0x64, 0x64, 1, 1),
                                                             irq_no_flags(1)}))})),
    });
    if (config.pvpanic)
        append(sb, device("PEVT", join({name("_HID", string("QEMU0001")),
                                        name("_CRS", resource_template({io(VIREO_PVPANIC_PORT, VIREO_PVPANIC_PORT,
                                                                           1, 1)}))})));
    for (size_t i = 0; i < config.virtio.size(); ++i) {
        const VirtioMmioDesc& d = config.virtio[i];
        append(sb, device(fmt::format("VR{:02X}", i),
                          join({name("_HID", string("LNRO0005")), name("_UID", integer(i)),
                                name("_CRS", resource_template({memory32_fixed(true, uint32_t(d.base),
                                                                               uint32_t(d.size)),
                                                                interrupt(true, Trigger::Edge, Polarity::ActiveHigh,
                                                                          Sharing::Exclusive, {d.gsi})}))})));
    }
    append(body, scope("\\_SB", sb));
    return body;
}

std::expected<size_t, std::string> write_acpi_tables(std::span<uint8_t> dst, uint64_t guest_addr,
                                                     const AcpiConfig& config) {
    // The kernel's fallback scan looks for the RSDP on 16-byte boundaries
    // in the BIOS area; pointers in the RSDT are 32-bit.
    if (guest_addr % 16 != 0 || guest_addr < 0xe0000 || guest_addr > 0x100000 - kRsdpSize)
        return fail(fmt::format("acpi: tables at 0x{:x}: the RSDP must be 16-byte aligned in 0xe0000-0xfffff",
                                guest_addr));
    auto aml_body = build_dsdt_aml(config);
    if (!aml_body) return std::unexpected(aml_body.error());
    ByteWriter dsdt_w = table_header("DSDT", 2);  // revision 2: 64-bit AML integers
    dsdt_w.append(*aml_body);
    const std::vector<uint8_t> dsdt = finish(std::move(dsdt_w));
    const std::vector<uint8_t> madt = build_madt(config.ncpus);
    const std::vector<uint8_t> facs = build_facs();

    // Layout: the pointer tables have fixed sizes, so every offset is known
    // before the tables that hold addresses are built.
    const size_t n_tables = 2;  // FADT, MADT
    size_t off = 0;
    const auto place = [&](size_t size, size_t align) {
        off = (off + align - 1) & ~(align - 1);
        const size_t at = off;
        off += size;
        return at;
    };
    const size_t rsdp_off = place(kRsdpSize, 16);
    const size_t xsdt_off = place(kHeaderSize + 8 * n_tables, 16);
    const size_t rsdt_off = place(kHeaderSize + 4 * n_tables, 16);
    const size_t fadt_off = place(kFadtSize, 16);
    const size_t facs_off = place(kFacsSize, 64);  // the FACS must be 64-byte aligned
    const size_t madt_off = place(madt.size(), 16);
    const size_t dsdt_off = place(dsdt.size(), 16);
    const size_t total = off;
    if (total > dst.size())
        return fail(fmt::format("acpi: tables need {} bytes, more than the {}-byte area at 0x{:x}", total,
                                dst.size(), guest_addr));

    const uint64_t fadt_addr = guest_addr + fadt_off;
    const uint64_t madt_addr = guest_addr + madt_off;
    const uint64_t ptrs[] = {fadt_addr, madt_addr};
    const std::vector<uint8_t> fadt = build_fadt(guest_addr + facs_off, guest_addr + dsdt_off);
    const std::vector<uint8_t> xsdt = build_pointer_table("XSDT", ptrs, true);
    const std::vector<uint8_t> rsdt = build_pointer_table("RSDT", ptrs, false);
    const std::vector<uint8_t> rsdp = build_rsdp(guest_addr + rsdt_off, guest_addr + xsdt_off);

    std::fill(dst.begin(), dst.begin() + total, 0);
    const auto put = [&](size_t at, const std::vector<uint8_t>& t) { std::copy(t.begin(), t.end(), dst.begin() + at); };
    put(rsdp_off, rsdp);
    put(xsdt_off, xsdt);
    put(rsdt_off, rsdt);
    put(fadt_off, fadt);
    put(facs_off, facs);
    put(madt_off, madt);
    put(dsdt_off, dsdt);
    return total;
}

}  // namespace vireo
