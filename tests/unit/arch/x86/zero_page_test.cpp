#include "vmm/arch/x86/zero_page.h"

#include <gtest/gtest.h>

#include "tests/unit/x86_test_images.h"
#include "vireo/layout.h"
#include "vmm/arch/x86/bzimage.h"

namespace vireo {
namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t GiB = 1ull << 30;

uint64_t le(const std::vector<uint8_t>& b, size_t off, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b[off + i]) << (8 * i);
    return v;
}

ZeroPageParams sample_params(uint64_t mem) {
    ZeroPageParams p;
    p.cmdline_addr = VIREO_CMDLINE_ADDR;
    p.cmdline_size = 42;
    p.initrd_addr = 0x7654000;
    p.initrd_size = 0x123456;
    p.e820 = build_e820(mem);
    p.acpi_rsdp_addr = VIREO_ACPI_ADDR;
    return p;
}

TEST(ZeroPage, FieldsAtTheirBootProtocolOffsets) {
    const auto file = testimg::make_bzimage();
    auto img = parse_bzimage(file);
    ASSERT_TRUE(img) << img.error();
    std::vector<uint8_t> zp(4096, 0xcc);  // garbage the writer must clear
    const auto p = sample_params(5 * GiB);
    auto r = write_zero_page(zp, img->hdr, p);
    ASSERT_TRUE(r) << r.error();

    // The setup header is copied to 0x1f1, byte for byte as in the file
    // up to the fields the loader owns.
    EXPECT_EQ(le(zp, 0x1f1, 1), 4u);          // setup_sects
    EXPECT_EQ(le(zp, 0x1fe, 2), 0xaa55u);     // boot_flag
    EXPECT_EQ(le(zp, 0x202, 4), 0x53726448u); // "HdrS"
    EXPECT_EQ(le(zp, 0x206, 2), 0x020fu);     // version
    EXPECT_EQ(le(zp, 0x210, 1), 0xffu);       // type_of_loader
    EXPECT_EQ(le(zp, 0x211, 1) & (LOADED_HIGH | CAN_USE_HEAP), uint64_t(LOADED_HIGH | CAN_USE_HEAP));
    EXPECT_EQ(le(zp, 0x218, 4), 0x7654000u);  // ramdisk_image
    EXPECT_EQ(le(zp, 0x21c, 4), 0x123456u);   // ramdisk_size
    EXPECT_EQ(le(zp, 0x224, 2), 0xfe00u);     // heap_end_ptr
    EXPECT_EQ(le(zp, 0x228, 4), VIREO_CMDLINE_ADDR);  // cmd_line_ptr
    EXPECT_EQ(le(zp, 0x238, 4), 2047u);       // cmdline_size, from the image
    EXPECT_EQ(le(zp, 0x0c0, 4), 0u);          // ext_ramdisk_image
    EXPECT_EQ(le(zp, 0x0c8, 4), 0u);          // ext_cmd_line_ptr
    EXPECT_EQ(le(zp, 0x070, 8), VIREO_ACPI_ADDR);  // acpi_rsdp_addr
    EXPECT_EQ(le(zp, 0x1ef, 1), 0u);          // sentinel

    // The E820 table: count at 0x1e8, 20-byte entries from 0x2d0.
    ASSERT_EQ(le(zp, 0x1e8, 1), p.e820.size());
    for (size_t i = 0; i < p.e820.size(); ++i) {
        const size_t at = 0x2d0 + 20 * i;
        EXPECT_EQ(le(zp, at, 8), p.e820[i].addr) << i;
        EXPECT_EQ(le(zp, at + 8, 8), p.e820[i].size) << i;
        EXPECT_EQ(le(zp, at + 16, 4), p.e820[i].type) << i;
    }
    EXPECT_EQ(le(zp, 0x2d0 + 20 * 4, 8), VIREO_HIGH_RAM);  // the RAM above 4 GiB

    // Everything else was cleared.
    EXPECT_EQ(le(zp, 0x000, 8), 0u);
    EXPECT_EQ(le(zp, 0xff8, 8), 0u);
}

TEST(ZeroPage, HighAddressesUseTheExtFields) {
    std::vector<uint8_t> zp(4096);
    auto p = sample_params(8 * GiB);
    p.cmdline_addr = 0x123456789;
    p.initrd_addr = 0x100000000;
    p.initrd_size = 0x100000000 + 5;
    ASSERT_TRUE(write_zero_page(zp, default_setup_header(), p));
    EXPECT_EQ(le(zp, 0x228, 4), 0x23456789u);
    EXPECT_EQ(le(zp, 0x0c8, 4), 1u);
    EXPECT_EQ(le(zp, 0x218, 4), 0u);
    EXPECT_EQ(le(zp, 0x0c0, 4), 1u);
    EXPECT_EQ(le(zp, 0x21c, 4), 5u);
    EXPECT_EQ(le(zp, 0x0c4, 4), 1u);
}

TEST(ZeroPage, DefaultHeaderIsUsableForAnElfKernel) {
    std::vector<uint8_t> zp(4096);
    ASSERT_TRUE(write_zero_page(zp, default_setup_header(), sample_params(256 * MiB)));
    EXPECT_EQ(le(zp, 0x1fe, 2), 0xaa55u);
    EXPECT_EQ(le(zp, 0x202, 4), 0x53726448u);
    EXPECT_EQ(le(zp, 0x236, 2) & XLF_KERNEL_64, uint64_t(XLF_KERNEL_64));
}

TEST(ZeroPage, Errors) {
    const setup_header h = default_setup_header();
    std::vector<uint8_t> small(4095, 0x11);
    EXPECT_FALSE(write_zero_page(small, h, sample_params(64 * MiB)));
    EXPECT_EQ(small[0], 0x11);

    std::vector<uint8_t> zp(4096, 0x22);
    auto p = sample_params(64 * MiB);
    p.cmdline_size = 2048;
    auto r = write_zero_page(zp, h, p);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("command line is 2048 bytes"), std::string::npos) << r.error();
    EXPECT_EQ(zp[0], 0x22);  // untouched

    p = sample_params(64 * MiB);
    p.e820.resize(129, E820Entry{0, 4096, kE820Ram});
    EXPECT_FALSE(write_zero_page(zp, h, p));

    setup_header low = h;
    low.xloadflags = XLF_KERNEL_64;  // no loading above 4 GiB
    low.initrd_addr_max = 0x37ffffff;
    p = sample_params(64 * MiB);
    p.initrd_addr = 0x37fff000;
    p.initrd_size = 0x2000;
    r = write_zero_page(zp, low, p);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("initrd_addr_max"), std::string::npos) << r.error();
    p.initrd_size = 0x1000;
    EXPECT_TRUE(write_zero_page(zp, low, p));
}

TEST(InitrdPlacement, HighestPageAlignedSpot) {
    auto a = choose_initrd_addr(512 * MiB, 10 * MiB + 1, 0x7fffffff, 0x5000000);
    ASSERT_TRUE(a) << a.error();
    EXPECT_EQ(*a, 502 * MiB - 4096);  // 10 MiB + 1 byte needs the page below
    EXPECT_EQ(*a % 4096, 0u);
    EXPECT_LE(*a + 10 * MiB + 1, 512 * MiB);

    // initrd_addr_max is inclusive and lower than RAM.
    a = choose_initrd_addr(5 * GiB, 4096, 0x37ffffff, 0x5000000);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, 0x38000000u - 4096);

    // Above the hole RAM does not count.
    a = choose_initrd_addr(5 * GiB, 4096, 0xffffffff, 0x5000000);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, VIREO_MMIO_HOLE - 4096);
}

TEST(InitrdPlacement, ErrorsWhenItDoesNotFit) {
    auto a = choose_initrd_addr(64 * MiB, 60 * MiB, 0x7fffffff, 16 * MiB);
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().find("do not fit"), std::string::npos) << a.error();
    EXPECT_FALSE(choose_initrd_addr(64 * MiB, 0, 0x7fffffff, 16 * MiB));
    EXPECT_FALSE(choose_initrd_addr(64 * MiB, UINT64_MAX, UINT64_MAX, 16 * MiB));
    EXPECT_FALSE(choose_initrd_addr(64 * MiB, 4096, 0x7fffffff, UINT64_MAX));
    // Exactly fits between the kernel end and the top of RAM.
    a = choose_initrd_addr(64 * MiB, 48 * MiB, 0x7fffffff, 16 * MiB);
    ASSERT_TRUE(a) << a.error();
    EXPECT_EQ(*a, 16 * MiB);
}

}  // namespace
}  // namespace vireo
