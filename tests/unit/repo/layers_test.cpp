// tools/check-layers keeps includes going one way (ARCHITECTURE.md,
// "Layers"); running it here makes `make test` fail on an include against
// the order, with the checker's own lines as the message.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "tests/unit/repo_root.h"

namespace vireo::test {
namespace {

TEST(Layers, NoIncludeGoesAgainstTheOrder) {
    auto root = find_repo_root();
    ASSERT_TRUE(root) << "repository not found from the binary or the working directory";
    std::string cmd = "python3 '" + (*root / "tools" / "check-layers").string() + "' '" + root->string() + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr) << "cannot run " << cmd;
    std::string out;
    std::array<char, 4096> buf;
    while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    int status = ::pclose(p);
    ASSERT_TRUE(WIFEXITED(status)) << cmd << " did not exit";
    EXPECT_EQ(WEXITSTATUS(status), 0) << out;
    EXPECT_NE(out.find("check-layers: 0 problem(s)"), std::string::npos) << out;
}

}  // namespace
}  // namespace vireo::test
