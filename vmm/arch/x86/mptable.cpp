#include "vmm/arch/x86/mptable.h"

#include <fmt/format.h>

#include <algorithm>

#include "vireo/layout.h"
#include "vmm/arch/x86/bytes.h"

namespace vireo {

namespace {

// Sizes and codes from the MP spec 1.4, chapter 4.
constexpr size_t kFloatingSize = 16;
constexpr size_t kHeaderSize = 44;
constexpr size_t kProcessorEntrySize = 20;
constexpr size_t kSmallEntrySize = 8;  // bus, I/O APIC, I/O and local interrupt entries
constexpr unsigned kIsaIrqs = 16;
constexpr unsigned kIoIntEntries = kIsaIrqs - 1;  // no entry for IRQ2, the 8259 cascade
constexpr unsigned kLocalIntEntries = 2;

constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoApic = 2;
constexpr uint8_t kEntryIoInt = 3;
constexpr uint8_t kEntryLocalInt = 4;

constexpr uint8_t kIntTypeInt = 0;
constexpr uint8_t kIntTypeNmi = 1;
constexpr uint8_t kIntTypeExtInt = 3;
// Polarity and trigger "conforming to the bus": edge/active-high on ISA.
constexpr uint16_t kIntFlagsConforming = 0;

constexpr uint8_t kSpecRev = 4;          // 1.4
constexpr uint8_t kLapicVersion = 0x14;  // integrated local APIC
constexpr uint8_t kIoApicVersion = 0x11; // what KVM's I/O APIC reports
constexpr uint8_t kCpuEnabled = 1 << 0;
constexpr uint8_t kCpuBsp = 1 << 1;
// Family 6 signature with FPU and APIC feature bits, as for any P6+ CPU; the
// kernel reads the real values from CPUID.
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);
constexpr uint8_t kIsaBusId = 0;
constexpr uint8_t kAllLapics = 0xff;
// APIC ids are 8 bits and 0xff is the broadcast id; the I/O APIC takes
// the id after the last CPU.
constexpr unsigned kMaxCpus = 254;

}  // namespace

size_t mptable_size(unsigned ncpus) {
    return kFloatingSize + kHeaderSize + size_t(ncpus) * kProcessorEntrySize +
           kSmallEntrySize * (2 + kIoIntEntries + kLocalIntEntries);  // 2: bus + I/O APIC
}

std::expected<size_t, std::string> write_mptable(std::span<uint8_t> dst, uint64_t guest_addr, unsigned ncpus) {
    if (ncpus == 0) return std::unexpected(std::string("mptable: no CPUs"));
    if (ncpus > kMaxCpus)
        return std::unexpected(fmt::format("mptable: {} CPUs, the MP table's 8-bit APIC ids allow {}", ncpus,
                                           kMaxCpus));
    const size_t total = mptable_size(ncpus);
    if (total > dst.size())
        return std::unexpected(fmt::format("mptable: {} CPUs need {} bytes, more than the {}-byte area at 0x{:x}",
                                           ncpus, total, dst.size(), guest_addr));
    if (guest_addr % 16 != 0 || guest_addr > 0x100000000ull - total)
        return std::unexpected(fmt::format("mptable: address 0x{:x} is not 16-byte aligned below 4 GiB",
                                           guest_addr));
    const uint64_t config_addr = guest_addr + kFloatingSize;

    x86::ByteWriter fp;
    fp.text("_MP_", 4);
    fp.u32(uint32_t(config_addr));
    fp.u8(1);         // length in 16-byte paragraphs
    fp.u8(kSpecRev);
    fp.u8(0);         // checksum, below
    fp.u8(0);         // feature 1: 0 = a configuration table is present
    fp.u8(0);         // feature 2: bit 7 IMCR clear = virtual wire mode
    fp.zeros(3);
    fp.patch_u8(10, x86::checksum_byte(fp.bytes()));

    x86::ByteWriter ct;
    ct.text("PCMP", 4);
    ct.u16(0);  // base table length, below
    ct.u8(kSpecRev);
    ct.u8(0);   // checksum, below
    ct.text("VIREO", 8);
    ct.text("VIREO VM", 12);
    ct.u32(0);  // no OEM table
    ct.u16(0);
    ct.u16(0);  // entry count, below
    ct.u32(uint32_t(VIREO_LAPIC_ADDR));
    ct.u16(0);  // no extended table
    ct.u8(0);
    ct.u8(0);

    uint16_t entries = 0;
    for (unsigned cpu = 0; cpu < ncpus; ++cpu, ++entries) {
        ct.u8(kEntryProcessor);
        ct.u8(uint8_t(cpu));  // local APIC id
        ct.u8(kLapicVersion);
        ct.u8(uint8_t(kCpuEnabled | (cpu == 0 ? kCpuBsp : 0)));
        ct.u32(kCpuSignature);
        ct.u32(kCpuFeatures);
        ct.zeros(8);
    }
    ct.u8(kEntryBus);
    ct.u8(kIsaBusId);
    ct.text("ISA", 6);
    ++entries;

    const uint8_t ioapic_id = uint8_t(ncpus);
    ct.u8(kEntryIoApic);
    ct.u8(ioapic_id);
    ct.u8(kIoApicVersion);
    ct.u8(1);  // enabled
    ct.u32(uint32_t(VIREO_IOAPIC_ADDR));
    ++entries;

    for (unsigned irq = 0; irq < kIsaIrqs; ++irq) {
        if (irq == 2) continue;
        ct.u8(kEntryIoInt);
        ct.u8(kIntTypeInt);
        ct.u16(kIntFlagsConforming);
        ct.u8(kIsaBusId);
        ct.u8(uint8_t(irq));
        ct.u8(ioapic_id);
        ct.u8(uint8_t(irq == 0 ? 2 : irq));  // the PIT's IRQ0 is wired to pin 2
        ++entries;
    }
    const struct {
        uint8_t type;
        uint8_t lint;
    } lints[] = {{kIntTypeExtInt, 0}, {kIntTypeNmi, 1}};
    for (const auto& l : lints) {
        ct.u8(kEntryLocalInt);
        ct.u8(l.type);
        ct.u16(kIntFlagsConforming);
        ct.u8(kIsaBusId);
        ct.u8(0);
        ct.u8(kAllLapics);
        ct.u8(l.lint);
        ++entries;
    }
    ct.patch_u16(4, uint16_t(ct.size()));
    ct.patch_u16(34, entries);
    ct.patch_u8(7, x86::checksum_byte(ct.bytes()));

    std::copy(fp.bytes().begin(), fp.bytes().end(), dst.begin());
    std::copy(ct.bytes().begin(), ct.bytes().end(), dst.begin() + kFloatingSize);
    return fp.size() + ct.size();
}

}  // namespace vireo
