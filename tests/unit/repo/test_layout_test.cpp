// Unit tests mirror the sources: the test of vmm/devices/pvpanic.cpp is
// tests/unit/devices/pvpanic_test.cpp, of agent/trace.cpp
// tests/unit/agent/trace_test.cpp, so a change's test is found by its
// path. Files under tests/unit/repo/ check the repository itself and
// mirror nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/repo_root.h"

namespace fs = std::filesystem;
using vireo::test::find_repo_root;

namespace {

// The sources a test path may mirror: vmm/ is the default root (its
// folders are tests/unit's top level), the other source trees keep
// their own name.
std::vector<fs::path> mirrored_sources(const fs::path& relative_test) {
    std::string stem = relative_test.stem().string();
    stem.erase(stem.size() - std::string("_test").size());
    fs::path base = relative_test.parent_path() / stem;
    std::vector<fs::path> out;
    for (const char* root : {"vmm", "."})
        for (const char* ext : {".cpp", ".h"}) out.push_back(fs::path(root) / fs::path(base.string() + ext));
    return out;
}

TEST(TestLayout, EveryUnitTestMirrorsASourceFile) {
    auto root = find_repo_root();
    if (!root) GTEST_SKIP() << "the repository (README.md, Makefile, vmm/) is not above this binary or the working directory";
    fs::path tests = *root / "tests/unit";
    int checked = 0;
    for (const auto& e : fs::recursive_directory_iterator(tests)) {
        std::string name = e.path().filename().string();
        if (!e.is_regular_file() || !name.ends_with("_test.cpp")) continue;
        fs::path rel = fs::relative(e.path(), tests);
        if (*rel.begin() == "repo") continue;
        ++checked;
        bool found = false;
        for (const auto& s : mirrored_sources(rel)) found = found || fs::exists(*root / s);
        EXPECT_TRUE(found) << "tests/unit/" << rel.string() << " mirrors no source: expected "
                           << mirrored_sources(rel).front().string() << " or "
                           << mirrored_sources(rel)[2].string() << " (or its .h)";
    }
    EXPECT_GT(checked, 40) << "found too few unit tests under " << tests.string();
}

TEST(TestLayout, MirrorRuleMapsVmmAndOtherTrees) {
    auto a = mirrored_sources("devices/pvpanic_test.cpp");
    EXPECT_EQ(a[0], fs::path("vmm/devices/pvpanic.cpp"));
    EXPECT_EQ(a[2], fs::path("./devices/pvpanic.cpp"));
    auto b = mirrored_sources("agent/trace_test.cpp");
    EXPECT_EQ(b[2], fs::path("./agent/trace.cpp"));
}

}  // namespace
