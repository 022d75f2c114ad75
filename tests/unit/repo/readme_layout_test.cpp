// The README's "Layout" section is the map a newcomer reads first; it must
// name every top-level folder of the repository and nothing that is gone.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "tests/unit/repo_root.h"

namespace fs = std::filesystem;
using vireo::test::find_repo_root;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The folders the layout block names: a line starting with `name/` is a
// top-level folder, an indented `name/` or `a/b/` a folder inside the last
// top-level one.
struct Layout {
    std::set<std::string> top;
    std::set<std::string> all;  // top-level and nested, relative to the root
};

Layout parse_layout(const std::string& readme) {
    Layout out;
    auto start = readme.find("## Layout");
    if (start == std::string::npos) return out;
    auto open = readme.find("```", start);
    auto close = readme.find("```", open + 3);
    if (open == std::string::npos || close == std::string::npos) return out;
    std::istringstream block(readme.substr(open + 3, close - open - 3));
    std::string line, parent;
    while (std::getline(block, line)) {
        if (line.empty()) continue;
        size_t indent = line.find_first_not_of(' ');
        if (indent == std::string::npos) continue;
        std::string word = line.substr(indent, line.find(' ', indent) - indent);
        if (word.size() < 2 || word.back() != '/') continue;
        word.pop_back();
        if (indent == 0) {
            parent = word;
            out.top.insert(word.substr(0, word.find('/')));
            out.all.insert(word);
        } else if (!parent.empty()) {
            out.all.insert(parent + "/" + word);
        }
    }
    return out;
}

// Top-level folders git would track: not .git, not what .gitignore names
// as a root folder (the build tree).
std::set<std::string> top_level_folders(const fs::path& root) {
    std::set<std::string> ignored{".git"};
    std::istringstream gi(read_file(root / ".gitignore"));
    for (std::string l; std::getline(gi, l);)
        if (l.size() > 2 && l.front() == '/' && l.back() == '/') ignored.insert(l.substr(1, l.size() - 2));
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(root))
        if (e.is_directory() && !ignored.contains(e.path().filename().string())) out.insert(e.path().filename().string());
    return out;
}

TEST(ReadmeLayout, NamesEveryTopLevelFolderAndOnlyFoldersThatExist) {
    auto root = find_repo_root();
    if (!root) GTEST_SKIP() << "the repository (README.md, Makefile, vmm/) is not above this binary or the working directory";
    Layout layout = parse_layout(read_file(*root / "README.md"));
    ASSERT_FALSE(layout.top.empty()) << "README.md has no ```-block under ## Layout";
    for (const auto& f : layout.all) EXPECT_TRUE(fs::is_directory(*root / f)) << "README's layout names " << f << "/, which does not exist";
    for (const auto& f : top_level_folders(*root))
        EXPECT_TRUE(layout.top.contains(f)) << "the top-level folder " << f << "/ is missing from README's layout";
}

TEST(ReadmeLayout, ParserReadsTopLevelAndNestedFolders) {
    Layout l = parse_layout("x\n## Layout\n\n```\nMakefile   rules\nvmm/       the monitor\n  kvm/     fds\n  host.*   glue\n"
                            "include/vireo/  shared\n```\n## Next\n```\nnot/ this\n```\n");
    EXPECT_EQ(l.top, (std::set<std::string>{"vmm", "include"}));
    EXPECT_EQ(l.all, (std::set<std::string>{"vmm", "vmm/kvm", "include/vireo"}));
}

}  // namespace
