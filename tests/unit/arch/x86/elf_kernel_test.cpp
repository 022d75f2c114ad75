#include "vmm/arch/x86/elf_kernel.h"

#include <elf.h>
#include <gtest/gtest.h>

#include "tests/unit/x86_test_images.h"
#include "vireo/layout.h"

namespace vireo {
namespace {

using testimg::ElfSpec;
using testimg::make_elf64;

constexpr uint64_t MiB = 1ull << 20;

std::string parse_error(const std::vector<uint8_t>& f) {
    auto r = parse_elf64(f);
    return r ? std::string("(parsed)") : r.error();
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

TEST(ElfKernel, ParsesSegmentsAndEntry) {
    ElfSpec s;
    s.loads.push_back({0x400000, 0xffffffff80400000, std::vector<uint8_t>(100, 0x11), 0x2000});
    const auto f = make_elf64(s);
    auto r = parse_elf64(f);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->type, ET_EXEC);
    EXPECT_EQ(r->entry, 0x200000u);
    ASSERT_EQ(r->segments.size(), 2u);
    EXPECT_EQ(r->segments[0].paddr, 0x200000u);
    EXPECT_EQ(r->segments[0].filesz, 64u);
    EXPECT_EQ(r->segments[0].memsz, 0x3000u);
    EXPECT_EQ(r->segments[0].data.size(), 64u);
    EXPECT_EQ(r->segments[0].data[0], 0xf4);
    EXPECT_EQ(r->segments[0].data.data(), f.data() + r->segments[0].offset);
    EXPECT_EQ(r->segments[1].vaddr, 0xffffffff80400000u);
    EXPECT_EQ(r->segments[1].paddr, 0x400000u);
    EXPECT_EQ(r->segments[1].data[99], 0x11);
    EXPECT_EQ(r->paddr_start(), 0x200000u);
    EXPECT_EQ(r->paddr_end(), 0x402000u);
    EXPECT_FALSE(r->pvh_entry);
    EXPECT_FALSE(r->ring3);
}

TEST(ElfKernel, EntryMayBeVirtual) {
    ElfSpec s;
    s.loads = {{0x1000000, 0xffffffff81000000, std::vector<uint8_t>(16, 0x90), 0x1000}};
    s.entry = 0xffffffff81000000;
    EXPECT_TRUE(parse_elf64(make_elf64(s)));
    s.type = ET_DYN;
    EXPECT_TRUE(parse_elf64(make_elf64(s)));
}

TEST(ElfKernel, ReadsThePvhNote) {
    ElfSpec s;
    s.pvh_entry = 0x1000850;
    auto r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r) << r.error();
    ASSERT_TRUE(r->pvh_entry);
    EXPECT_EQ(*r->pvh_entry, 0x1000850u);

    s.pvh_desc_size = 4;  // the 32-bit form other kernels use
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r->pvh_entry, 0x1000850u);

    s.pvh_desc_size = 8;
    s.pvh_entry = 0x100000000;
    EXPECT_TRUE(contains(parse_error(make_elf64(s)), "above 4 GiB"));
    s.pvh_entry = 0x1000850;
    s.pvh_desc_size = 2;
    EXPECT_TRUE(contains(parse_error(make_elf64(s)), "PVH entry note"));
}

TEST(ElfKernel, ReadsTheVireoRing3Note) {
    ElfSpec s;
    s.ring3 = vireo_ring3_note{1, 0};
    auto r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r) << r.error();
    ASSERT_TRUE(r->ring3);
    EXPECT_EQ(r->ring3->version, 1u);
    EXPECT_EQ(ring3_stack_size(*r->ring3), 64u * 1024);

    s.ring3 = vireo_ring3_note{1, 32768};
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(ring3_stack_size(*r->ring3), 32768u);

    s.ring3 = vireo_ring3_note{2, 0};
    EXPECT_TRUE(contains(parse_error(make_elf64(s)), "version 2"));
    s.ring3 = vireo_ring3_note{1, 1000};
    EXPECT_TRUE(contains(parse_error(make_elf64(s)), "multiple of 16"));

    // Both notes in one image.
    s.ring3 = vireo_ring3_note{1, 0};
    s.pvh_entry = 0x200000;
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(r->ring3 && r->pvh_entry);
}

TEST(ElfKernel, RejectsA32BitElf) {
    EXPECT_EQ(parse_error(testimg::make_elf32()), "kernel: ELF is 32-bit (ELFCLASS32), not a 64-bit kernel");
}

TEST(ElfKernel, RejectsBadHeaders) {
    EXPECT_TRUE(contains(parse_error({}), "not an ELF"));
    EXPECT_TRUE(contains(parse_error({0x7f, 'E', 'L', 'F'}), "not an ELF"));
    const auto good = make_elf64();
    EXPECT_TRUE(contains(parse_error(std::vector<uint8_t>(good.begin(), good.begin() + 40)), "too small"));

    auto f = good;
    f[EI_DATA] = ELFDATA2MSB;
    EXPECT_TRUE(contains(parse_error(f), "little-endian"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64, 2);
    EXPECT_TRUE(contains(parse_error(f), "not x86-64"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_type), ET_REL, 2);
    EXPECT_TRUE(contains(parse_error(f), "ET_EXEC"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_phentsize), 32, 2);
    EXPECT_TRUE(contains(parse_error(f), "program header size"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_phnum), 0, 2);
    EXPECT_TRUE(contains(parse_error(f), "no program headers"));
}

TEST(ElfKernel, RejectsTruncatedProgramHeaders) {
    const auto good = make_elf64();
    // Cut the file in the middle of the program header table.
    const std::vector<uint8_t> cut(good.begin(), good.begin() + sizeof(Elf64_Ehdr) + 20);
    EXPECT_TRUE(contains(parse_error(cut), "program headers"));

    auto f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_phnum), 0xfff0, 2);
    EXPECT_TRUE(contains(parse_error(f), "program headers"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8, 8);  // would wrap
    EXPECT_TRUE(contains(parse_error(f), "program headers"));
}

TEST(ElfKernel, RejectsBadSegments) {
    const auto good = make_elf64();
    const size_t ph = sizeof(Elf64_Ehdr);
    auto f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_filesz), 0x10000, 8);  // beyond the file
    EXPECT_TRUE(contains(parse_error(f), "outside"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_offset), UINT64_MAX, 8);
    EXPECT_TRUE(contains(parse_error(f), "outside"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_memsz), 8, 8);  // < filesz
    EXPECT_TRUE(contains(parse_error(f), "filesz"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_paddr), UINT64_MAX - 0x100, 8);
    EXPECT_TRUE(contains(parse_error(f), "wraps"));
    f = good;
    testimg::put(f, offsetof(Elf64_Ehdr, e_entry), 0x900000, 8);
    EXPECT_TRUE(contains(parse_error(f), "entry"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_type), PT_NULL, 4);
    EXPECT_TRUE(contains(parse_error(f), "no PT_LOAD"));
}

TEST(ElfKernel, RejectsBadNotes) {
    ElfSpec s;
    s.ring3 = vireo_ring3_note{1, 0};
    const auto good = make_elf64(s);
    auto img = parse_elf64(good);
    ASSERT_TRUE(img);
    // The PT_NOTE is the second program header; its data follow the table.
    const size_t ph = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
    Elf64_Phdr note{};
    std::memcpy(&note, &good[ph], sizeof note);
    ASSERT_EQ(note.p_type, uint32_t(PT_NOTE));

    auto f = good;
    testimg::put(f, note.p_offset, 0xffffffff, 4);  // first note's namesz
    EXPECT_TRUE(contains(parse_error(f), "note"));
    f = good;
    testimg::put(f, note.p_offset + 4, 0xfffffff0, 4);  // descsz
    EXPECT_TRUE(contains(parse_error(f), "note"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_filesz), 5, 8);  // cuts a note header
    EXPECT_TRUE(contains(parse_error(f), "note"));
    f = good;
    testimg::put(f, ph + offsetof(Elf64_Phdr, p_filesz), 0x100000, 8);
    EXPECT_TRUE(contains(parse_error(f), "PT_NOTE"));
}

TEST(ElfKernel, SegmentsMustFitInRam) {
    ElfSpec s;
    auto r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r);
    EXPECT_TRUE(check_segments_fit(*r, 64 * MiB));
    // 0x200000 + 0x3000 is past the end of 2 MiB of RAM.
    EXPECT_FALSE(check_segments_fit(*r, 2 * MiB));

    s.loads = {{60 * MiB, 60 * MiB, std::vector<uint8_t>(16), 8 * MiB}};
    s.entry = 60 * MiB;
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r);
    auto fit = check_segments_fit(*r, 64 * MiB);
    ASSERT_FALSE(fit);
    EXPECT_TRUE(contains(fit.error(), "outside guest RAM")) << fit.error();
    EXPECT_TRUE(check_segments_fit(*r, 128 * MiB));

    // Below 1 MiB is vireo's, even though it is RAM.
    s.loads = {{0x8000, 0x8000, std::vector<uint8_t>(16), 0x1000}};
    s.entry = 0x8000;
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r);
    EXPECT_FALSE(check_segments_fit(*r, 64 * MiB));

    // Into the MMIO hole with lots of RAM.
    s.loads = {{VIREO_MMIO_HOLE - 0x1000, VIREO_MMIO_HOLE - 0x1000, std::vector<uint8_t>(16), 0x2000}};
    s.entry = VIREO_MMIO_HOLE - 0x1000;
    r = parse_elf64(make_elf64(s));
    ASSERT_TRUE(r);
    EXPECT_FALSE(check_segments_fit(*r, 8ull << 30));
}

}  // namespace
}  // namespace vireo
