// Bad input to `vireo run`: command-line errors and malformed kernel images.
// The contract (ARCHITECTURE.md, Contracts): one line on stderr that says what and where,
// exit status 2 (VIREO_EXIT_BAD_INPUT), and no guest started (no output).
#include <elf.h>
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/common/elf32_header.h"
#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<unsigned char>;

void expect_bad_input(const RunResult& r, const std::string& must_mention = {}) {
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_BAD_INPUT) << "want exit 2, got " << r.describe();
    EXPECT_EQ(r.stderr_lines(), 1) << "want one line on stderr, got " << r.describe();
    EXPECT_TRUE(r.out.empty()) << "no guest may start, got " << r.describe();
    if (!must_mention.empty()) {
        EXPECT_NE(r.err.find(must_mention), std::string::npos)
            << "the error should name \"" << must_mention << "\"; got " << r.describe();
    }
}

// ---------------------------------------------------------------- CLI errors

class CommandLine : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = missing_file_reason(vireo_binary()); !why.empty()) GTEST_SKIP() << why;
    }
};

TEST_F(CommandLine, NoSubcommand) { expect_bad_input(run_vireo({}, 10s)); }
TEST_F(CommandLine, UnknownSubcommand) { expect_bad_input(run_vireo({"fly"}, 10s)); }
TEST_F(CommandLine, RunWithoutKernel) { expect_bad_input(run_vireo({"run"}, 10s), "--kernel"); }
TEST_F(CommandLine, UnknownOption) { expect_bad_input(run_vireo({"run", "--kernel", "x", "--bogus"}, 10s)); }

// Settings checked before /dev/kvm is opened, so these run on every host.
std::vector<std::string> hello_with(std::vector<std::string> extra) {
    std::vector<std::string> a{"run", "--kernel", testguest_binary(), "--cmdline", "workload=hello", "--mem", "64M"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}
TEST_F(CommandLine, SeccompBadModeIsBadInput) { expect_bad_input(run_vireo(hello_with({"--seccomp", "maybe"}), 10s), "--seccomp"); }
TEST_F(CommandLine, ProbesBadModeIsBadInput) { expect_bad_input(run_vireo(hello_with({"--probes", "maybe"}), 10s), "--probes"); }
TEST_F(CommandLine, UnknownUserIsBadInput) {
    expect_bad_input(run_vireo(hello_with({"--user", "no-such-user-9"}), 10s), "--user: no user 'no-such-user-9'");
}

struct BadValue {
    const char* option;
    const char* value;
};

class BadOptionValue : public CommandLine, public ::testing::WithParamInterface<BadValue> {};

TEST_P(BadOptionValue, OneLineExit2) {
    auto [option, value] = GetParam();
    // A kernel that exists, so only the option can be at fault.
    std::string kernel = testguest_binary();
    if (!missing_file_reason(kernel).empty()) kernel = vireo_binary();
    expect_bad_input(run_vireo({"run", "--kernel", kernel, option, value}, 10s), option);
}

INSTANTIATE_TEST_SUITE_P(Values, BadOptionValue,
                         ::testing::Values(BadValue{"--mem", "abc"}, BadValue{"--mem", "1K"}, BadValue{"--mem", "64Q"},
                                           BadValue{"--mem", "99999999999999999999"}, BadValue{"--cpus", "0"},
                                           BadValue{"--cpus", "100000"}, BadValue{"--cpus", "two"},
                                           BadValue{"--name", "no spaces"}, BadValue{"--console", "bogus"}),
                         [](const auto& info) {
                             std::string n = std::string(info.param.option + 2) + "_" + std::to_string(info.index);
                             return n;
                         });

// ---------------------------------------------------------------- kernels

class BadKernel : public ::testing::Test {
protected:
    void SetUp() override {
        // No KVM needed: every kernel check happens before /dev/kvm is
        // opened, so these run on every host (only the control boots).
        for (const auto& why : {missing_file_reason(vireo_binary()), missing_file_reason(testguest_binary())})
            if (!why.empty()) GTEST_SKIP() << why;
        char tmpl[] = "/tmp/vireo-badkernel-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::ifstream f(testguest_binary(), std::ios::binary);
        good_.assign(std::istreambuf_iterator<char>(f), {});
        ASSERT_GE(good_.size(), sizeof(Elf64_Ehdr));
    }
    void TearDown() override {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    std::string write(const std::string& name, const Bytes& bytes) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        return path;
    }

    // The test guest with its first PT_LOAD program header changed by `edit`.
    // The entry point moves with the segment's p_vaddr, so the edit alone is
    // at fault (not an entry point that no longer lies in any segment).
    Bytes with_first_load(void (*edit)(Elf64_Phdr&)) {
        Bytes b = good_;
        Elf64_Ehdr eh;
        std::memcpy(&eh, b.data(), sizeof eh);
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            size_t off = eh.e_phoff + size_t(i) * eh.e_phentsize;
            std::memcpy(&ph, b.data() + off, sizeof ph);
            if (ph.p_type != PT_LOAD) continue;
            uint64_t old_vaddr = ph.p_vaddr;
            edit(ph);
            eh.e_entry += ph.p_vaddr - old_vaddr;  // modulo 2^64
            std::memcpy(b.data(), &eh, sizeof eh);
            std::memcpy(b.data() + off, &ph, sizeof ph);
            return b;
        }
        ADD_FAILURE() << "the test guest has no PT_LOAD";
        return b;
    }

    RunResult run(const std::string& path) {
        return run_vireo({"run", "--kernel", path, "--mem", "64M", "--cmdline", "workload=hello"}, 15s);
    }

    std::string dir_;
    Bytes good_;
};

// The unmodified guest boots: the failures below are due to the edits alone.
TEST_F(BadKernel, ControlTheTestGuestItselfBoots) {
    if (auto why = kvm_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto r = run(write("good", good_));
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
}

TEST_F(BadKernel, EmptyFile) {
    auto path = write("empty", {});
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, MissingFile) {
    auto path = dir_ + "/does-not-exist";
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, Directory) { expect_bad_input(run(dir_), dir_); }

TEST_F(BadKernel, TruncatedElfHeader) {
    auto path = write("truncated", Bytes(good_.begin(), good_.begin() + 20));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, TruncatedProgramHeaders) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, good_.data(), sizeof eh);
    auto path = write("no-phdrs", Bytes(good_.begin(), good_.begin() + long(eh.e_phoff) + 8));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, WrongMagic) {
    Bytes b = good_;
    b[1] = 'X';  // "\x7fXLF"
    auto path = write("wrong-magic", b);
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, RandomBytes) {
    Bytes b(64 * 1024);
    unsigned x = 12345;
    for (auto& c : b) c = (unsigned char)((x = x * 1103515245 + 12345) >> 16);
    auto path = write("random", b);
    expect_bad_input(run(path), path);
}

// A complete, valid 32-bit i386 ELF executable (an infinite loop at 2 MiB),
// written byte by byte so no 32-bit toolchain is needed.
TEST_F(BadKernel, Elf32) {
    const unsigned char code[] = {0xeb, 0xfe};  // jmp .
    const uint32_t size = sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr) + sizeof code;
    Elf32_Ehdr eh = testimg::elf32_exec_header(0x200000 + sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr));
    eh.e_phoff = sizeof(Elf32_Ehdr);
    eh.e_phentsize = sizeof(Elf32_Phdr);
    eh.e_phnum = 1;
    Elf32_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_offset = 0;
    ph.p_vaddr = ph.p_paddr = 0x200000;
    ph.p_filesz = ph.p_memsz = size;
    ph.p_flags = PF_R | PF_X;
    ph.p_align = 0x1000;
    Bytes b(size);
    std::memcpy(b.data(), &eh, sizeof eh);
    std::memcpy(b.data() + sizeof eh, &ph, sizeof ph);
    std::memcpy(b.data() + sizeof eh + sizeof ph, code, sizeof code);
    auto path = write("elf32", b);
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentBeyondRam) {
    auto path = write("beyond-ram", with_first_load([](Elf64_Phdr& ph) { ph.p_paddr = ph.p_vaddr = 256ull << 20; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentStraddlesEndOfRam) {
    auto path = write("straddles", with_first_load([](Elf64_Phdr& ph) { ph.p_paddr = ph.p_vaddr = (64ull << 20) - 0x1000; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentBelowOneMiB) {
    // Low memory holds vireo's boot tables (GDT, page tables, boot info).
    auto path = write("low", with_first_load([](Elf64_Phdr& ph) { ph.p_paddr = ph.p_vaddr = 0x1000; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentInMmioHole) {
    auto path = write("mmio-hole", with_first_load([](Elf64_Phdr& ph) { ph.p_paddr = ph.p_vaddr = 0xd0000000; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentAddressWrapsAround) {
    auto path = write("wraps", with_first_load([](Elf64_Phdr& ph) { ph.p_paddr = ph.p_vaddr = ~0ull - 0xfff; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentMemSizeHuge) {
    auto path = write("huge", with_first_load([](Elf64_Phdr& ph) { ph.p_memsz = 1ull << 40; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, SegmentDataPastEndOfFile) {
    auto path = write("past-eof", with_first_load([](Elf64_Phdr& ph) { ph.p_filesz = ph.p_memsz = 1ull << 24; }));
    expect_bad_input(run(path), path);
}

TEST_F(BadKernel, FileSizeLargerThanMemSize) {
    auto path = write("filesz-gt-memsz", with_first_load([](Elf64_Phdr& ph) { ph.p_memsz = ph.p_filesz / 2; }));
    expect_bad_input(run(path), path);
}

}  // namespace
}  // namespace vireo::test
