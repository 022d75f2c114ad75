#include "vmm/arch/x86/acpi.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "vireo/layout.h"

namespace vireo {
namespace {

uint64_t le(std::span<const uint8_t> b, size_t off, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b[off + i]) << (8 * i);
    return v;
}

uint8_t sum(std::span<const uint8_t> b) {
    uint8_t s = 0;
    for (uint8_t x : b) s = uint8_t(s + x);
    return s;
}

size_t count(std::span<const uint8_t> hay, std::string_view needle) {
    size_t n = 0;
    for (auto it = hay.begin();; ++it) {
        it = std::search(it, hay.end(), needle.begin(), needle.end());
        if (it == hay.end()) return n;
        ++n;
    }
}

AcpiConfig config(unsigned ncpus, unsigned nvirtio) {
    AcpiConfig c;
    c.ncpus = ncpus;
    const uint32_t gsis[] = {5, 6, 7, 10, 11, 12, 14, 15};
    for (unsigned i = 0; i < nvirtio; ++i)
        c.virtio.push_back({VIREO_VIRTIO_MMIO_BASE + i * VIREO_VIRTIO_MMIO_SIZE, VIREO_VIRTIO_MMIO_SIZE, gsis[i]});
    return c;
}

// The tables as the guest finds them, following addresses from the RSDP.
struct Tables {
    std::vector<uint8_t> area = std::vector<uint8_t>(VIREO_ACPI_SIZE, 0);
    size_t used = 0;
    std::map<std::string, std::span<const uint8_t>> by_sig;

    std::span<const uint8_t> at(uint64_t addr) const {
        EXPECT_GE(addr, VIREO_ACPI_ADDR);
        EXPECT_LT(addr + 36, VIREO_ACPI_ADDR + used);
        const size_t off = addr - VIREO_ACPI_ADDR;
        const size_t len = le(area, off + 4, 4);
        EXPECT_LE(off + len, used);
        return std::span<const uint8_t>(area).subspan(off, len);
    }
    void check_sdt(std::span<const uint8_t> t, const char* sig, uint8_t rev) {
        SCOPED_TRACE(sig);
        EXPECT_EQ(std::string(t.begin(), t.begin() + 4), sig);
        EXPECT_EQ(t[8], rev);
        EXPECT_EQ(sum(t), 0) << "checksum";
        EXPECT_EQ(std::string(t.begin() + 10, t.begin() + 16), "VIREO ");
        by_sig[sig] = t;
    }
};

Tables build(const AcpiConfig& c) {
    Tables t;
    auto r = write_acpi_tables(t.area, VIREO_ACPI_ADDR, c);
    EXPECT_TRUE(r) << r.error();
    if (!r) return t;
    t.used = *r;
    std::span<const uint8_t> a(t.area);

    // RSDP: first, 16-byte aligned in the BIOS area, both checksums.
    EXPECT_EQ(std::string(a.begin(), a.begin() + 8), "RSD PTR ");
    EXPECT_EQ(sum(a.first(20)), 0) << "RSDP checksum";
    EXPECT_EQ(sum(a.first(36)), 0) << "RSDP extended checksum";
    EXPECT_EQ(a[15], 2);               // revision
    EXPECT_EQ(le(a, 20, 4), 36u);      // length

    auto xsdt = t.at(le(a, 24, 8));
    t.check_sdt(xsdt, "XSDT", 1);
    auto rsdt = t.at(le(a, 16, 4));
    t.check_sdt(rsdt, "RSDT", 1);
    EXPECT_EQ((xsdt.size() - 36) / 8, (rsdt.size() - 36) / 4);
    for (size_t off = 36; off < xsdt.size(); off += 8) {
        auto tbl = t.at(le(xsdt, off, 8));
        const std::string sig(tbl.begin(), tbl.begin() + 4);
        t.check_sdt(tbl, sig.c_str(), sig == "FACP" ? 6 : 4);
        EXPECT_EQ(le(rsdt, 36 + (off - 36) / 2, 4), le(xsdt, off, 8));
    }
    EXPECT_TRUE(t.by_sig.count("FACP"));
    EXPECT_TRUE(t.by_sig.count("APIC"));
    if (!t.by_sig.count("FACP")) return t;
    auto fadt = t.by_sig["FACP"];
    EXPECT_EQ(fadt.size(), 276u);
    EXPECT_EQ(le(fadt, 40, 4), le(fadt, 140, 8));  // DSDT == X_DSDT
    EXPECT_EQ(le(fadt, 36, 4), le(fadt, 132, 8));  // FIRMWARE_CTRL == X_FIRMWARE_CTRL
    auto dsdt = t.at(le(fadt, 140, 8));
    t.check_sdt(dsdt, "DSDT", 2);
    const uint64_t facs_addr = le(fadt, 132, 8);
    EXPECT_EQ(facs_addr % 64, 0u);
    const size_t facs_off = facs_addr - VIREO_ACPI_ADDR;
    EXPECT_EQ(std::string(a.begin() + facs_off, a.begin() + facs_off + 4), "FACS");
    EXPECT_EQ(le(a, facs_off + 4, 4), 64u);
    return t;
}

TEST(Acpi, ChainAndChecksums) {
    Tables t = build(config(2, 3));
    EXPECT_EQ(t.by_sig.size(), 5u);  // XSDT RSDT FACP APIC DSDT
    EXPECT_LE(t.used, VIREO_ACPI_SIZE);
}

TEST(Acpi, FadtDescribesVireosFixedHardware) {
    Tables t = build(config(1, 0));
    auto f = t.by_sig["FACP"];
    EXPECT_EQ(le(f, 46, 2), uint64_t(VIREO_ACPI_SCI_IRQ));  // SCI_INT
    EXPECT_EQ(le(f, 48, 4), 0u);                           // SMI_CMD: always in ACPI mode
    EXPECT_EQ(le(f, 56, 4), uint64_t(VIREO_ACPI_PM1A_EVT));
    EXPECT_EQ(le(f, 64, 4), uint64_t(VIREO_ACPI_PM1A_CNT));
    EXPECT_EQ(le(f, 76, 4), uint64_t(VIREO_ACPI_PM_TMR));
    EXPECT_EQ(f[88], 4);  // PM1_EVT_LEN
    EXPECT_EQ(f[89], 2);  // PM1_CNT_LEN
    EXPECT_EQ(f[91], 4);  // PM_TMR_LEN
    EXPECT_EQ(f[108], 0x32);  // CENTURY
    const uint64_t boot_arch = le(f, 109, 2);
    EXPECT_TRUE(boot_arch & (1 << 1)) << "8042";
    EXPECT_TRUE(boot_arch & (1 << 2)) << "no VGA";
    EXPECT_FALSE(boot_arch & (1 << 5)) << "CMOS RTC present";
    const uint64_t flags = le(f, 112, 4);
    EXPECT_TRUE(flags & (1 << 10)) << "RESET_REG_SUP";
    EXPECT_FALSE(flags & (1 << 20)) << "not hardware-reduced";
    EXPECT_FALSE(flags & (1 << 4)) << "fixed-feature power button";
    // RESET_REG: system I/O, 8 bits, port 0xcf9; RESET_VALUE 6.
    EXPECT_EQ(f[116], 1);
    EXPECT_EQ(f[117], 8);
    EXPECT_EQ(le(f, 120, 8), 0xcf9u);
    EXPECT_EQ(f[128], 6);
    // X_ blocks agree with the 32-bit ones and have the matching widths.
    EXPECT_EQ(f[148], 1);
    EXPECT_EQ(f[149], 32);
    EXPECT_EQ(le(f, 152, 8), uint64_t(VIREO_ACPI_PM1A_EVT));
    EXPECT_EQ(f[173], 16);
    EXPECT_EQ(le(f, 176, 8), uint64_t(VIREO_ACPI_PM1A_CNT));
    EXPECT_EQ(f[209], 32);
    EXPECT_EQ(le(f, 212, 8), uint64_t(VIREO_ACPI_PM_TMR));
}

TEST(Acpi, MadtEntriesPerCpuCount) {
    for (unsigned n : {1u, 2u, 4u}) {
        SCOPED_TRACE(n);
        Tables t = build(config(n, 0));
        auto m = t.by_sig["APIC"];
        ASSERT_FALSE(m.empty());
        EXPECT_EQ(le(m, 36, 4), VIREO_LAPIC_ADDR);
        EXPECT_EQ(le(m, 40, 4), 1u);  // PCAT_COMPAT
        std::map<int, int> types;
        std::vector<uint8_t> apic_ids;
        size_t off = 44;
        while (off < m.size()) {
            const uint8_t type = m[off], len = m[off + 1];
            ASSERT_GE(len, 2);
            ASSERT_LE(off + len, m.size());
            types[type]++;
            if (type == 0) {
                apic_ids.push_back(m[off + 3]);
                EXPECT_EQ(le(m, off + 4, 4) & 1, 1u);  // enabled
            }
            if (type == 1) {
                EXPECT_EQ(m[off + 2], n);  // I/O APIC id after the CPUs
                EXPECT_EQ(le(m, off + 4, 4), VIREO_IOAPIC_ADDR);
                EXPECT_EQ(le(m, off + 8, 4), 0u);
            }
            if (type == 2 && m[off + 3] == 0) {
                EXPECT_EQ(le(m, off + 4, 4), 2u);  // IRQ0 -> GSI2
            }
            if (type == 2 && m[off + 3] == 9) {
                EXPECT_EQ(le(m, off + 8, 2), 0x0du);  // level, active high
            }
            if (type == 4) {
                EXPECT_EQ(m[off + 5], 1);  // NMI on LINT1
            }
            off += len;
        }
        EXPECT_EQ(off, m.size());
        EXPECT_EQ(types[0], int(n));
        EXPECT_EQ(types[1], 1);
        EXPECT_EQ(types[2], 2);
        EXPECT_EQ(types[4], 1);
        for (unsigned i = 0; i < n; ++i) EXPECT_EQ(apic_ids[i], i);
    }
}

TEST(Acpi, DsdtPublishesDevices) {
    for (unsigned nv : {0u, 1u, 3u, 8u}) {
        SCOPED_TRACE(nv);
        Tables t = build(config(1, nv));
        auto d = t.by_sig["DSDT"];
        EXPECT_EQ(count(d, "LNRO0005"), nv);
        EXPECT_EQ(count(d, "_S5_"), 1u);
        EXPECT_EQ(count(d, "COM1"), 1u);
        EXPECT_EQ(count(d, "QEMU0001"), 1u);
        if (nv > 0) {
            EXPECT_EQ(count(d, "VR00"), 1u);
        }
        // \_S5_: Package (4) {5, 5, 0, 0}.
        const std::string s5 = "_S5_";
        auto it = std::search(d.begin(), d.end(), s5.begin(), s5.end());
        ASSERT_NE(it, d.end());
        const std::vector<uint8_t> want = {0x12, 0x08, 0x04, 0x0a, VIREO_ACPI_S5_TYPE, 0x0a, VIREO_ACPI_S5_TYPE,
                                           0x00, 0x00};
        EXPECT_TRUE(std::equal(want.begin(), want.end(), it + 4));
    }
}

TEST(Acpi, VirtioResourcesAreInTheDsdt) {
    AcpiConfig c = config(1, 2);
    auto aml = build_dsdt_aml(c);
    ASSERT_TRUE(aml) << aml.error();
    // Memory32Fixed(ReadWrite, base, 0x1000) of device 1, then its Interrupt.
    const uint32_t base = uint32_t(VIREO_VIRTIO_MMIO_BASE + VIREO_VIRTIO_MMIO_SIZE);
    const std::vector<uint8_t> want = {0x86, 0x09, 0x00, 0x01, uint8_t(base), uint8_t(base >> 8), uint8_t(base >> 16),
                                       uint8_t(base >> 24), 0x00, 0x10, 0x00, 0x00,
                                       0x89, 0x06, 0x00, 0x03, 0x01, 6, 0, 0, 0};
    EXPECT_NE(std::search(aml->begin(), aml->end(), want.begin(), want.end()), aml->end());
}

TEST(Acpi, NoPvpanicWhenAskedNot) {
    AcpiConfig c = config(1, 0);
    c.pvpanic = false;
    auto aml = build_dsdt_aml(c);
    ASSERT_TRUE(aml);
    EXPECT_EQ(count(*aml, "QEMU0001"), 0u);
}

TEST(Acpi, RejectsBadConfigs) {
    std::vector<uint8_t> area(VIREO_ACPI_SIZE, 0x77);
    const auto err = [&](const AcpiConfig& c, uint64_t addr = VIREO_ACPI_ADDR) {
        auto r = write_acpi_tables(area, addr, c);
        return r ? std::string("(ok)") : r.error();
    };
    EXPECT_NE(err(config(0, 0)).find("no CPUs"), std::string::npos);
    EXPECT_NE(err(config(255, 0)).find("255 CPUs"), std::string::npos);
    AcpiConfig c = config(1, 2);
    c.virtio[1].gsi = c.virtio[0].gsi;
    EXPECT_NE(err(c).find("share GSI"), std::string::npos);
    c = config(1, 1);
    c.virtio[0].gsi = VIREO_ACPI_SCI_IRQ;
    EXPECT_NE(err(c).find("GSI 9"), std::string::npos);
    c.virtio[0].gsi = 24;
    EXPECT_NE(err(c).find("24 pins"), std::string::npos);
    c = config(1, 1);
    c.virtio[0].base = 0xfffff800;
    EXPECT_NE(err(c).find("4 GiB"), std::string::npos);
    c = config(1, 2);
    c.virtio[1].base = c.virtio[0].base + 0x800;
    EXPECT_NE(err(c).find("overlap"), std::string::npos);
    EXPECT_NE(err(config(1, 0), VIREO_ACPI_ADDR + 8).find("16-byte"), std::string::npos);
    EXPECT_NE(err(config(1, 0), 0x100000).find("16-byte"), std::string::npos);
    EXPECT_TRUE(std::all_of(area.begin(), area.end(), [](uint8_t b) { return b == 0x77; })) << "nothing written";

    std::vector<uint8_t> tiny(512);
    auto r = write_acpi_tables(tiny, VIREO_ACPI_ADDR, config(4, 8));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("more than the 512-byte area"), std::string::npos) << r.error();
}

TEST(Acpi, ManyCpusAndDevicesFit) {
    AcpiConfig c = config(254, 0);
    for (uint32_t i = 0; i < 8; ++i) c.virtio.push_back({0xd0000000ull + i * 0x1000, 0x1000, 16 + i});
    Tables t = build(c);
    EXPECT_EQ(count(t.by_sig["DSDT"], "LNRO0005"), 8u);
}

}  // namespace
}  // namespace vireo
