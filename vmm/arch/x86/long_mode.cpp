#include "vmm/arch/x86/long_mode.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "vireo/layout.h"

namespace vireo {

namespace {

constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kHuge = 0x80;
constexpr uint64_t k2M = 2ull << 20, k1G = 1ull << 30;

constexpr uint64_t kCr0Pe = 1, kCr0Mp = 2, kCr0Et = 0x10, kCr0Ne = 0x20, kCr0Wp = 0x10000, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 0x20, kCr4Osfxsr = 0x200, kCr4Osxmmexcpt = 0x400;
constexpr uint64_t kEferLme = 0x100, kEferLma = 0x400;

// A GDT descriptor from its parts (flags: G, D/B, L nibble; access byte).
constexpr uint64_t descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
    return (uint64_t(limit) & 0xffff) | (uint64_t(base & 0xffffff) << 16) | (uint64_t(access) << 40) |
           (uint64_t((limit >> 16) & 0xf) << 48) | (uint64_t(flags & 0xf) << 52) | (uint64_t(base >> 24) << 56);
}

kvm_segment segment_from(uint16_t selector, uint8_t type, uint8_t dpl, bool code64, bool big) {
    kvm_segment s{};
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = type;
    s.present = 1;
    s.dpl = dpl;
    s.db = big ? 1 : 0;
    s.s = 1;
    s.l = code64 ? 1 : 0;
    s.g = 1;
    return s;
}

}  // namespace

std::expected<void, std::string> write_boot_cpu_tables(const GuestMemory& mem, uint64_t ram_size, EntryMode mode) {
    // GDT: null, null, 64-bit code, data, unused, user data, user code, 32-bit code, TSS (two slots).
    uint64_t gdt[kGdtEntries] = {};
    gdt[kBootCs >> 3] = descriptor(0, 0xfffff, 0x9b, 0xa);   // P, DPL0, code RX accessed; G, L
    gdt[kBootDs >> 3] = descriptor(0, 0xfffff, 0x93, 0xc);   // P, DPL0, data RW accessed; G, D/B
    gdt[kBootTss >> 3] = descriptor(uint32_t(VIREO_TSS_ADDR), VIREO_TSS_SIZE - 1, 0x8b, 0x0);  // 64-bit TSS (busy)
    gdt[kUserDs >> 3] = descriptor(0, 0xfffff, 0xf3, 0xc);   // P, DPL3, data
    gdt[kUserCs >> 3] = descriptor(0, 0xfffff, 0xfb, 0xa);   // P, DPL3, code, L
    gdt[kBootCs32 >> 3] = descriptor(0, 0xfffff, 0x9b, 0xc); // P, DPL0, 32-bit code
    if (!mem.write(VIREO_GDT_ADDR, {reinterpret_cast<const uint8_t*>(gdt), sizeof gdt}))
        return std::unexpected(std::string("boot: guest RAM too small for the GDT"));
    // The TSS carries an I/O permission bitmap that allows every port. Why:
    // KVM's PVM flavour drops IOPL when it enters guest ring 3, and then
    // checks `in`/`out` against this bitmap instead; on hardware KVM the
    // IOPL of 3 already allows them. A ring-0 kernel loads its own TSS.
    auto tss = mem.view(VIREO_TSS_ADDR, VIREO_TSS_SIZE);
    if (tss.empty()) return std::unexpected(std::string("boot: guest RAM too small for the TSS"));
    std::memset(tss.data(), 0, tss.size());
    tss[0x66] = 0x68;                 // I/O map base: right after the 104-byte TSS
    tss[VIREO_TSS_SIZE - 1] = 0xff;  // the byte past the bitmap must be all ones

    if (mode == EntryMode::Pvh32) return {};  // PVH starts with paging off

    // How much to map: ring 0 gets all of [0, 4 GiB) and RAM above; ring 3
    // gets RAM below the hole and the hole itself (virtio-mmio, the boot
    // marker), nothing between, so a stray access faults.
    uint64_t low_ram = std::min(ram_size, uint64_t(VIREO_MMIO_HOLE));
    uint64_t high_ram = ram_size > VIREO_MMIO_HOLE ? ram_size - VIREO_MMIO_HOLE : 0;
    uint64_t top = high_ram ? VIREO_HIGH_RAM + high_ram : VIREO_HIGH_RAM;
    uint64_t gigs = (top + k1G - 1) / k1G;
    if (gigs > VIREO_PD_MAX)
        return std::unexpected(fmt::format("boot: {} GiB of address space is more than the {} GiB the boot page tables map",
                                           gigs, VIREO_PD_MAX));
    uint64_t user = mode == EntryMode::Ring3 ? kUser : 0;
    uint64_t flags = kPresent | kWritable | user;

    auto pml4 = mem.view(VIREO_PML4_ADDR, 4096);
    auto pdpt = mem.view(VIREO_PDPT_ADDR, 4096);
    auto pds = mem.view(VIREO_PD_ADDR, gigs * 4096);
    if (pml4.empty() || pdpt.empty() || pds.empty())
        return std::unexpected(std::string("boot: guest RAM too small for the page tables"));
    std::memset(pml4.data(), 0, 4096);
    std::memset(pdpt.data(), 0, 4096);
    std::memset(pds.data(), 0, pds.size());
    auto put = [](std::span<uint8_t> page, size_t i, uint64_t v) { std::memcpy(page.data() + i * 8, &v, 8); };
    put(pml4, 0, VIREO_PDPT_ADDR | flags);
    uint64_t low_mapped = (low_ram + k2M - 1) & ~(k2M - 1);
    for (uint64_t g = 0; g < gigs; ++g) {
        put(pdpt, g, (VIREO_PD_ADDR + g * 4096) | flags);
        for (uint64_t i = 0; i < 512; ++i) {
            uint64_t addr = g * k1G + i * k2M;
            bool map = true;
            if (mode == EntryMode::Ring3)
                map = addr < low_mapped || (addr >= VIREO_MMIO_HOLE && addr < VIREO_HIGH_RAM) ||
                      (addr >= VIREO_HIGH_RAM && addr < top);
            if (map) put(pds.subspan(g * 4096, 4096), i, addr | flags | kHuge);
        }
    }
    return {};
}

kvm_sregs boot_sregs(kvm_sregs s, EntryMode mode) {
    s.gdt.base = VIREO_GDT_ADDR;
    s.gdt.limit = kGdtEntries * 8 - 1;
    s.idt.base = VIREO_IDT_ADDR;
    s.idt.limit = 0;
    kvm_segment tr{};
    tr.base = VIREO_TSS_ADDR;
    tr.limit = VIREO_TSS_SIZE - 1;
    tr.selector = kBootTss;
    tr.type = 11;  // 64-bit TSS, busy
    tr.present = 1;
    s.tr = tr;
    s.ldt = kvm_segment{};
    s.ldt.type = 2;
    s.ldt.present = 1;
    s.ldt.unusable = 1;

    if (mode == EntryMode::Pvh32) {
        // PVH: 32-bit flat protected mode, paging off (Xen's HVM start ABI).
        s.cs = segment_from(kBootCs32, 0xb, 0, false, true);
        s.ds = s.es = s.fs = s.gs = s.ss = segment_from(kBootDs, 0x3, 0, false, true);
        s.cr0 = kCr0Pe | kCr0Et;
        s.cr4 = 0;
        s.efer = 0;
        return s;
    }
    bool user = mode == EntryMode::Ring3;
    uint8_t dpl = user ? 3 : 0;
    s.cs = segment_from(user ? kUserCs : kBootCs, 0xb, dpl, true, false);
    s.ds = s.es = s.fs = s.gs = s.ss = segment_from(user ? kUserDs : kBootDs, 0x3, dpl, false, true);
    s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
    s.cr3 = VIREO_PML4_ADDR;
    s.cr4 = kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt;
    s.efer = kEferLme | kEferLma;
    return s;
}

}  // namespace vireo
