// The unit binary may run from anywhere (tests/run-tests runs it from the
// repository root, a developer from build/), so tests that read the
// repository find it by walking up from the binary and from the working
// directory to the folder that holds README.md, Makefile and vmm/.
#pragma once

#include <filesystem>
#include <optional>

namespace vireo::test {

inline std::optional<std::filesystem::path> find_repo_root() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::path start : {fs::read_symlink("/proc/self/exe", ec).parent_path(), fs::current_path(ec)})
        for (fs::path p = start; !p.empty(); p = p.parent_path()) {
            if (fs::exists(p / "README.md") && fs::exists(p / "Makefile") && fs::is_directory(p / "vmm")) return p;
            if (p == p.root_path()) break;
        }
    return std::nullopt;
}

}  // namespace vireo::test
