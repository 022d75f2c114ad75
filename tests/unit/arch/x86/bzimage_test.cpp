#include "vmm/arch/x86/bzimage.h"

#include <glob.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tests/unit/x86_test_images.h"
#include "vmm/arch/x86/elf_kernel.h"

namespace vireo {
namespace {

using testimg::BzSpec;
using testimg::make_bzimage;

constexpr size_t MiB = 1u << 20;

std::string parse_error(const std::vector<uint8_t>& f) {
    auto r = parse_bzimage(f);
    return r ? std::string("(parsed)") : r.error();
}

TEST(BzImage, ParsesASyntheticImage) {
    BzSpec s;
    const auto f = make_bzimage(s);
    auto r = parse_bzimage(f);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->protocol, 0x020f);
    EXPECT_EQ(r->kernel.data(), f.data() + 5 * 512);
    EXPECT_EQ(r->kernel.size(), f.size() - 5 * 512);
    EXPECT_EQ(r->pref_address, 0x1000000u);
    EXPECT_EQ(r->init_size, 0x800000u);
    EXPECT_EQ(r->kernel_alignment, 0x200000u);
    EXPECT_TRUE(r->relocatable);
    EXPECT_EQ(r->initrd_addr_max, 0x7fffffffu);
    EXPECT_EQ(r->cmdline_size, 2047u);
    EXPECT_EQ(r->xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
    EXPECT_EQ(r->payload.data(), r->kernel.data() + 0x200);
    EXPECT_EQ(r->payload.size(), s.payload.size());
    EXPECT_EQ(r->compression, Compression::Xz);
    EXPECT_EQ(r->hdr.boot_flag, 0xaa55);
    EXPECT_EQ(r->hdr.header, 0x53726448u);
    EXPECT_EQ(r->end_when_loaded_at(0x1000000), 0x1000000u + 0x800000u);
}

TEST(BzImage, SetupSectsZeroMeansFour) {
    BzSpec s;
    s.setup_sects = 0;
    const auto f = make_bzimage(s);
    auto r = parse_bzimage(f);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->kernel.data(), f.data() + 5 * 512);
}

TEST(BzImage, HeaderFieldsPastTheHeaderEndAreZero) {
    // A 2.12 header ends at 0x268: kernel_info_offset (2.15) must not be
    // taken from whatever bytes follow.
    BzSpec s;
    s.version = 0x020c;
    s.jump_disp = 0x66;
    auto f = make_bzimage(s);
    testimg::put(f, 0x268, 0xdeadbeef, 4);
    auto r = parse_bzimage(f);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->hdr.kernel_info_offset, 0u);
}

TEST(BzImage, DetectsCompressionKinds) {
    const std::pair<std::vector<uint8_t>, Compression> cases[] = {
        {{0x1f, 0x8b, 8, 0}, Compression::Gzip},
        {{0xfd, '7', 'z', 'X', 'Z', 0}, Compression::Xz},
        {{0x28, 0xb5, 0x2f, 0xfd, 0}, Compression::Zstd},
        {{'B', 'Z', 'h', '9'}, Compression::Bzip2},
        {{0x02, 0x21, 0x4c, 0x18}, Compression::Lz4},
        {{0x89, 'L', 'Z', 'O'}, Compression::Lzo},
        {{0x5d, 0, 0, 0x80}, Compression::Lzma},
        {{0x7f, 'E', 'L', 'F'}, Compression::None},
        {{1, 2, 3, 4}, Compression::Unknown},
    };
    for (const auto& [magic, kind] : cases) {
        BzSpec s;
        s.payload = magic;
        const auto f = make_bzimage(s);
        auto r = parse_bzimage(f);
        ASSERT_TRUE(r) << r.error();
        EXPECT_EQ(r->compression, kind) << to_string(kind);
    }
    EXPECT_EQ(to_string(Compression::Zstd), "zstd");
}

TEST(BzImage, RejectsBadImages) {
    EXPECT_EQ(parse_error({}), "kernel: file is empty");
    auto full = make_bzimage();
    EXPECT_NE(parse_error(std::vector<uint8_t>(full.begin(), full.begin() + 0x250)).find("too small"),
              std::string::npos);

    auto f = full;
    f[0x1fe] = 0;
    EXPECT_NE(parse_error(f).find("boot flag"), std::string::npos);

    f = full;
    f[0x205] = 'X';
    EXPECT_EQ(parse_error(f), "kernel: bzImage header magic is not HdrS (offset 0x202)");

    BzSpec s;
    s.version = 0x020b;
    EXPECT_NE(parse_error(make_bzimage(s)).find("boot protocol 2.11 is too old"), std::string::npos);

    s = {};
    s.xloadflags = 0;
    EXPECT_NE(parse_error(make_bzimage(s)).find("not 64-bit-capable"), std::string::npos);

    s = {};
    s.jump_disp = 0x40;  // header would end at 0x242
    EXPECT_NE(parse_error(make_bzimage(s)).find("setup header ends"), std::string::npos);
}

TEST(BzImage, RejectsPartsOutsideTheFile) {
    auto full = make_bzimage();
    auto f = full;
    f[0x1f1] = 200;  // setup claims 100 KiB
    EXPECT_NE(parse_error(f).find("past the end"), std::string::npos);

    f = full;
    testimg::put(f, 0x1f4, 0x100000, 4);  // syssize: 16 MiB
    EXPECT_NE(parse_error(f).find("truncated"), std::string::npos);

    f = full;
    testimg::put(f, 0x248, 0xfffffff0, 4);  // payload_offset near 4 GiB
    EXPECT_NE(parse_error(f).find("payload"), std::string::npos);

    f = full;
    testimg::put(f, 0x24c, 0xffffffff, 4);  // payload_length
    EXPECT_NE(parse_error(f).find("payload"), std::string::npos);

    f = full;
    testimg::put(f, 0x24c, 0, 4);
    EXPECT_NE(parse_error(f).find("payload"), std::string::npos);

    f = full;
    testimg::put(f, 0x230, 0x300000, 4);  // kernel_alignment not a power of two
    EXPECT_NE(parse_error(f).find("power of two"), std::string::npos);

    f = full;
    testimg::put(f, 0x260, 0, 4);
    EXPECT_NE(parse_error(f).find("init_size"), std::string::npos);
}

TEST(BzImage, DecompressesAnXzPayloadWithTrailer) {
    const auto elf = testimg::make_elf64();
    BzSpec s;
    s.payload = testimg::xz_like_linux(elf);
    const auto f = make_bzimage(s);
    auto img = parse_bzimage(f);
    ASSERT_TRUE(img) << img.error();
    ASSERT_EQ(img->compression, Compression::Xz);
    auto out = decompress_payload(*img, 1 * MiB);
    ASSERT_TRUE(out) << out.error();
    EXPECT_EQ(*out, elf);
    EXPECT_TRUE(parse_elf64(*out));

    // Without Linux's size trailer too.
    s.payload = testimg::xz_like_linux(elf, false);
    const auto f2 = make_bzimage(s);
    auto out2 = decompress_payload(*parse_bzimage(f2), 1 * MiB);
    ASSERT_TRUE(out2) << out2.error();
    EXPECT_EQ(*out2, elf);
}

TEST(BzImage, DecompressEnforcesLimitsAndIntegrity) {
    std::vector<uint8_t> big(300000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7 + (i >> 9));
    BzSpec s;
    s.payload = testimg::xz_like_linux(big);
    auto f = make_bzimage(s);
    auto img = parse_bzimage(f);
    ASSERT_TRUE(img);
    EXPECT_TRUE(decompress_payload(*img, big.size()));
    auto r = decompress_payload(*img, big.size() - 1);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("larger than"), std::string::npos) << r.error();

    // A trailer that disagrees with the stream.
    auto bad = s.payload;
    bad[bad.size() - 4] ^= 1;
    s.payload = bad;
    f = make_bzimage(s);
    r = decompress_payload(*parse_bzimage(f), 1 * MiB);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("trailer"), std::string::npos) << r.error();

    // Corrupt compressed data.
    bad = testimg::xz_like_linux(big);
    bad[bad.size() / 2] ^= 0x55;
    s.payload = bad;
    f = make_bzimage(s);
    r = decompress_payload(*parse_bzimage(f), 1 * MiB);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("xz"), std::string::npos) << r.error();

    // Truncated stream.
    bad = testimg::xz_like_linux(big, false);
    bad.resize(bad.size() - 40);
    s.payload = bad;
    f = make_bzimage(s);
    r = decompress_payload(*parse_bzimage(f), 1 * MiB);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("xz"), std::string::npos) << r.error();
}

TEST(BzImage, OtherCompressionIsAClearError) {
    BzSpec s;
    s.payload = {0x1f, 0x8b, 8, 0, 0, 0};
    const auto f = make_bzimage(s);
    auto r = decompress_payload(*parse_bzimage(f), 1 * MiB);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("gzip"), std::string::npos) << r.error();
}

TEST(BzImage, UncompressedPayloadIsCopied) {
    BzSpec s;
    s.payload = testimg::make_elf64();
    const auto f = make_bzimage(s);
    auto r = decompress_payload(*parse_bzimage(f), 1 * MiB);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, s.payload);
    EXPECT_FALSE(decompress_payload(*parse_bzimage(f), 16));
}

// The host's own Debian kernel, when there is one: the real thing end to end.
TEST(BzImage, HostKernelUnpacksToAnElf) {
    glob_t g{};
    const int rc = glob("/boot/vmlinuz-*", 0, nullptr, &g);
    std::string path = rc == 0 && g.gl_pathc > 0 ? g.gl_pathv[0] : "";
    globfree(&g);
    if (path.empty()) GTEST_SKIP() << "no /boot/vmlinuz-* on this machine";
    std::ifstream in(path, std::ios::binary);
    if (!in) GTEST_SKIP() << "cannot read " << path;
    const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    auto img = parse_bzimage(file);
    ASSERT_TRUE(img) << path << ": " << img.error();
    EXPECT_GE(img->protocol, kMinBootProtocol);
    EXPECT_TRUE(img->xloadflags & XLF_KERNEL_64);
    EXPECT_GE(img->init_size, img->kernel.size());
    if (img->compression != Compression::Xz)
        GTEST_SKIP() << path << " is " << to_string(img->compression) << "-compressed, not xz";

    auto vmlinux = decompress_payload(*img, 512 * MiB);
    ASSERT_TRUE(vmlinux) << vmlinux.error();
    auto elf = parse_elf64(*vmlinux);
    ASSERT_TRUE(elf) << elf.error();
    EXPECT_FALSE(elf->segments.empty());
    // Debian builds with CONFIG_PVH=y: the Xen PVH entry note is there.
    EXPECT_TRUE(elf->pvh_entry.has_value());
    EXPECT_FALSE(elf->ring3.has_value());
    EXPECT_TRUE(check_segments_fit(*elf, 512 * MiB)) << check_segments_fit(*elf, 512 * MiB).error();
}

}  // namespace
}  // namespace vireo
