#include "vmm/control/socket_path.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "vmm/kvm/unique_fd.h"

namespace vireo::control {

std::string default_control_dir() {
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/vireo";
    if (::geteuid() == 0) return "/run/vireo";
    return fmt::format("/tmp/vireo-{}", ::geteuid());
}

std::string default_control_path(std::string_view name) { return fmt::format("{}/{}.sock", default_control_dir(), name); }

namespace {
bool accepts(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.data(), path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return fd && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}
}  // namespace

void remove_stale_sockets() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::directory_iterator it(default_control_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        if (p.extension() != ".sock") continue;
        std::string stem = p.stem().string();
        if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos || stem.size() > 9) continue;
        // Only a pid that is gone: a live vireo may be between bind and listen.
        if (::kill(pid_t(std::stol(stem)), 0) != 0 && errno == ESRCH) ::unlink(p.c_str());
    }
}

std::expected<std::string, std::string> find_control_socket() {
    if (const char* env = std::getenv("VIREO_CONTROL"); env && *env) return std::string(env);
    namespace fs = std::filesystem;
    std::string dir = default_control_dir();
    std::vector<std::string> live;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() != ".sock") continue;
        if (accepts(it->path().string())) live.push_back(it->path().string());
    }
    std::sort(live.begin(), live.end());
    if (live.size() == 1) return live[0];
    if (live.empty())
        return std::unexpected(fmt::format("no running vireo found in {} (is it running? give --control PATH)", dir));
    std::string list;
    for (const auto& p : live) list += (list.empty() ? "" : ", ") + p;
    return std::unexpected(fmt::format("several vireo processes are running; choose one with --control: {}", list));
}

}  // namespace vireo::control
