#include "vmm/arch/x86/mptable.h"

#include <gtest/gtest.h>

#include <map>

#include "vireo/layout.h"

namespace vireo {
namespace {

uint64_t le(const std::vector<uint8_t>& b, size_t off, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b.at(off + i)) << (8 * i);
    return v;
}

uint8_t sum(const std::vector<uint8_t>& b, size_t off, size_t len) {
    uint8_t s = 0;
    for (size_t i = 0; i < len; ++i) s = uint8_t(s + b.at(off + i));
    return s;
}

struct Parsed {
    std::map<int, int> count;      // entry type -> number
    std::vector<std::vector<uint8_t>> io_ints;
    std::vector<std::vector<uint8_t>> cpus;
    std::vector<uint8_t> ioapic;
};

// Walks the table the way a kernel does, checking structure as it goes.
Parsed check_table(const std::vector<uint8_t>& area, size_t written, unsigned ncpus) {
    Parsed p;
    EXPECT_EQ(std::string(area.begin(), area.begin() + 4), "_MP_");
    EXPECT_EQ(sum(area, 0, 16), 0) << "floating pointer checksum";
    EXPECT_EQ(area[8], 1);  // 16 bytes
    EXPECT_EQ(area[9], 4);  // spec 1.4
    EXPECT_EQ(area[11], 0); // a configuration table follows
    const uint64_t config = le(area, 4, 4);
    EXPECT_EQ(config, VIREO_MPTABLE_ADDR + 16);
    const size_t ct = config - VIREO_MPTABLE_ADDR;
    EXPECT_EQ(std::string(area.begin() + ct, area.begin() + ct + 4), "PCMP");
    const size_t len = le(area, ct + 4, 2);
    EXPECT_EQ(ct + len, written);
    EXPECT_EQ(sum(area, ct, len), 0) << "configuration table checksum";
    EXPECT_EQ(le(area, ct + 36, 4), VIREO_LAPIC_ADDR);
    const size_t entries = le(area, ct + 34, 2);
    size_t off = ct + 44;
    for (size_t i = 0; i < entries; ++i) {
        const uint8_t type = area.at(off);
        const size_t size = type == 0 ? 20 : 8;
        std::vector<uint8_t> e(area.begin() + off, area.begin() + off + size);
        p.count[type]++;
        if (type == 0) p.cpus.push_back(e);
        if (type == 2) p.ioapic = e;
        if (type == 3) p.io_ints.push_back(e);
        off += size;
    }
    EXPECT_EQ(off, written);
    EXPECT_EQ(p.count[0], int(ncpus));
    EXPECT_EQ(p.count[1], 1);   // ISA bus
    EXPECT_EQ(p.count[2], 1);   // I/O APIC
    EXPECT_EQ(p.count[3], 15);  // ISA IRQs but the cascade
    EXPECT_EQ(p.count[4], 2);   // LINT0, LINT1
    return p;
}

TEST(MpTable, OneTwoAndThirtyTwoCpus) {
    for (unsigned n : {1u, 2u, 32u}) {
        SCOPED_TRACE(n);
        std::vector<uint8_t> area(1024, 0);
        auto r = write_mptable(area, VIREO_MPTABLE_ADDR, n);
        ASSERT_TRUE(r) << r.error();
        EXPECT_EQ(*r, mptable_size(n));
        EXPECT_LE(*r, 1024u);
        const Parsed p = check_table(area, *r, n);
        for (unsigned i = 0; i < n; ++i) {
            EXPECT_EQ(p.cpus[i][1], i);                   // APIC id
            EXPECT_EQ(p.cpus[i][3], i == 0 ? 3 : 1);      // enabled, BSP on 0 only
        }
        ASSERT_EQ(p.ioapic.size(), 8u);
        EXPECT_EQ(p.ioapic[1], n);  // id after the CPUs
        EXPECT_EQ(le(p.ioapic, 4, 4), VIREO_IOAPIC_ADDR);
        // IRQ0 goes to pin 2; the others to their own pin.
        for (const auto& e : p.io_ints) {
            const uint8_t irq = e[5], pin = e[7];
            EXPECT_NE(irq, 2);
            EXPECT_EQ(pin, irq == 0 ? 2 : irq);
            EXPECT_EQ(e[6], n);  // destination I/O APIC id
        }
    }
}

TEST(MpTable, Errors) {
    std::vector<uint8_t> area(1024, 0x5a);
    EXPECT_FALSE(write_mptable(area, VIREO_MPTABLE_ADDR, 0));
    auto r = write_mptable(area, VIREO_MPTABLE_ADDR, 41);  // 212 + 41 * 20 > 1024
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("41 CPUs need"), std::string::npos) << r.error();
    EXPECT_EQ(area[0], 0x5a);  // nothing written
    EXPECT_TRUE(write_mptable(area, VIREO_MPTABLE_ADDR, 40));
    EXPECT_FALSE(write_mptable(area, VIREO_MPTABLE_ADDR + 4, 1));  // unaligned
    EXPECT_FALSE(write_mptable(area, UINT64_MAX - 15, 1));
    std::vector<uint8_t> big(64 * 1024);
    EXPECT_FALSE(write_mptable(big, VIREO_MPTABLE_ADDR, 255));
}

}  // namespace
}  // namespace vireo
