#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vmm/cli.h"

namespace vireo {
namespace {

std::expected<CliResult, std::string> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "vireo");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(int(argv.size()), argv.data());
}

TEST(ParseSize, SuffixesAndBareMiB) {
    EXPECT_EQ(parse_size("64M").value(), 64ull << 20);
    EXPECT_EQ(parse_size("64MiB").value(), 64ull << 20);
    EXPECT_EQ(parse_size("2G").value(), 2ull << 30);
    EXPECT_EQ(parse_size("2g").value(), 2ull << 30);
    EXPECT_EQ(parse_size("4096K").value(), 4ull << 20);
    EXPECT_EQ(parse_size("512").value(), 512ull << 20);
    EXPECT_EQ(parse_size("1T").value(), 1ull << 40);
}

TEST(ParseSize, Errors) {
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("M"));
    EXPECT_FALSE(parse_size("12Q"));
    EXPECT_FALSE(parse_size("-5M"));
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_FALSE(parse_size("99999999999T"));
    EXPECT_NE(parse_size("12Q").error().find("suffix"), std::string::npos);
}

TEST(CommandLine, RunWithDefaults) {
    auto r = parse({"run", "--kernel", "k"});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->action, CliResult::Action::Run);
    EXPECT_EQ(r->guest.machine.kernel, "k");
    EXPECT_EQ(r->guest.machine.cpus, 1u);
    EXPECT_EQ(r->guest.machine.mem_bytes, 256ull << 20);
    EXPECT_EQ(r->guest.machine.console, "stdio");
    EXPECT_TRUE(r->guest.machine.unpack_kernel);
}

TEST(CommandLine, AllOptions) {
    auto r = parse({"run", "--kernel", "k", "--initrd", "i", "--cmdline", "console=ttyS0 quiet", "--cpus", "2", "--mem",
                    "1G", "--console", "none", "--name", "web-1", "--stats", "--no-unpack-kernel"});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->guest.machine.initrd, "i");
    EXPECT_EQ(r->guest.machine.cmdline, "console=ttyS0 quiet");
    EXPECT_EQ(r->guest.machine.cpus, 2u);
    EXPECT_EQ(r->guest.machine.mem_bytes, 1ull << 30);
    EXPECT_EQ(r->guest.machine.name, "web-1");
    EXPECT_TRUE(r->guest.machine.stats);
    EXPECT_FALSE(r->guest.machine.unpack_kernel);
}

TEST(CommandLine, ErrorsAreOneLine) {
    const std::vector<std::vector<std::string>> bad = {
        {},
        {"run"},                                             // --kernel missing
        {"run", "--kernel", "k", "--cpus", "0"},
        {"run", "--kernel", "k", "--cpus", "-1"},
        {"run", "--kernel", "k", "--cpus", "two"},
        {"run", "--kernel", "k", "--cpus", "100000"},
        {"run", "--kernel", "k", "--mem", "1X"},
        {"run", "--kernel", "k", "--mem", "1M"},             // below the minimum
        {"run", "--kernel", "k", "--mem", "100000K1"},
        {"run", "--kernel", "k", "--name", "bad name"},
        {"run", "--kernel", "k", "--bogus"},
        {"frobnicate"},
    };
    for (const auto& args : bad) {
        auto r = parse(args);
        std::string joined;
        for (auto& a : args) joined += a + " ";
        ASSERT_FALSE(r) << joined;
        EXPECT_FALSE(r.error().empty()) << joined;
        EXPECT_EQ(r.error().find('\n'), std::string::npos) << joined << ": " << r.error();
    }
}

TEST(CommandLine, HelpAndVersionExitZero) {
    testing::internal::CaptureStdout();
    auto r = parse({"--version"});
    std::string out = testing::internal::GetCapturedStdout();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->action, CliResult::Action::Exit);
    EXPECT_EQ(r->exit_status, 0);
    EXPECT_NE(out.find("vireo"), std::string::npos);
    testing::internal::CaptureStdout();
    r = parse({"run", "--help"});
    out = testing::internal::GetCapturedStdout();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->action, CliResult::Action::Exit);
    EXPECT_NE(out.find("--kernel"), std::string::npos);
}

}  // namespace
}  // namespace vireo
