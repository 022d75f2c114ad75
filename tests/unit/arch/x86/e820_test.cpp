#include "vmm/arch/x86/e820.h"

#include <gtest/gtest.h>

#include "vireo/layout.h"

namespace vireo {
namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t GiB = 1ull << 30;

// The fixed low part every map starts with.
void expect_low_entries(const std::vector<E820Entry>& m) {
    ASSERT_GE(m.size(), 3u);
    EXPECT_EQ(m[0], (E820Entry{0, VIREO_EBDA_START, kE820Ram}));
    EXPECT_EQ(m[1], (E820Entry{VIREO_EBDA_START, 0xa0000 - VIREO_EBDA_START, kE820Reserved}));
    EXPECT_EQ(m[2], (E820Entry{0xe0000, 0x20000, kE820Reserved}));
}

// No two entries overlap and they ascend: the kernel sanitizes otherwise,
// but we should not rely on it.
void expect_sorted_disjoint(const std::vector<E820Entry>& m) {
    for (size_t i = 1; i < m.size(); ++i) EXPECT_LE(m[i - 1].addr + m[i - 1].size, m[i].addr) << "entry " << i;
}

uint64_t ram_bytes(const std::vector<E820Entry>& m) {
    uint64_t sum = 0;
    for (const auto& e : m)
        if (e.type == kE820Ram) sum += e.size;
    return sum;
}

TEST(E820, Small64MiB) {
    const auto m = build_e820(64 * MiB);
    expect_low_entries(m);
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[3], (E820Entry{VIREO_HIGH_MEM, 63 * MiB, kE820Ram}));
    expect_sorted_disjoint(m);
    const auto r = guest_ram_regions(64 * MiB);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0], (RamRegion{0, 64 * MiB}));
}

TEST(E820, ThreeGiBEndsAtTheHole) {
    // 3 GiB is exactly the hole's start: nothing moves above 4 GiB.
    const auto m = build_e820(3 * GiB);
    expect_low_entries(m);
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[3], (E820Entry{VIREO_HIGH_MEM, VIREO_MMIO_HOLE - VIREO_HIGH_MEM, kE820Ram}));
    const auto r = guest_ram_regions(3 * GiB);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0], (RamRegion{0, 3 * GiB}));
}

TEST(E820, FiveGiBSplitsAroundTheHole) {
    const auto m = build_e820(5 * GiB);
    expect_low_entries(m);
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[3], (E820Entry{VIREO_HIGH_MEM, VIREO_MMIO_HOLE - VIREO_HIGH_MEM, kE820Ram}));
    EXPECT_EQ(m[4], (E820Entry{VIREO_HIGH_RAM, 2 * GiB, kE820Ram}));
    expect_sorted_disjoint(m);
    // All RAM is offered except the reserved low pieces.
    EXPECT_EQ(ram_bytes(m), 5 * GiB - (VIREO_HIGH_MEM - VIREO_EBDA_START));

    const auto r = guest_ram_regions(5 * GiB);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0], (RamRegion{0, VIREO_MMIO_HOLE}));
    EXPECT_EQ(r[1], (RamRegion{VIREO_HIGH_RAM, 2 * GiB}));
    EXPECT_EQ(r[0].size + r[1].size, 5 * GiB);
}

TEST(E820, LowRamEnd) {
    EXPECT_EQ(low_ram_end(64 * MiB), 64 * MiB);
    EXPECT_EQ(low_ram_end(5 * GiB), VIREO_MMIO_HOLE);
}

}  // namespace
}  // namespace vireo
