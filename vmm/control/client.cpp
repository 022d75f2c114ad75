#include "vmm/control/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo::control {

std::expected<ControlClient, std::string> ControlClient::connect(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) return std::unexpected(fmt::format("bad socket path '{}'", path));
    std::memcpy(addr.sun_path, path.data(), path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return std::unexpected(fmt::format("cannot connect to {}: {}", path, std::strerror(errno)));
    return ControlClient(std::move(fd));
}

std::expected<void, std::string> ControlClient::send_line(std::string_view line) {
    std::string l(line);
    l += '\n';
    size_t off = 0;
    while (off < l.size()) {
        ssize_t n = ::send(fd_.get(), l.data() + off, l.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::unexpected(fmt::format("send: {}", std::strerror(errno)));
        off += size_t(n);
    }
    return {};
}

std::expected<std::string, std::string> ControlClient::read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (size_t nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::unexpected(std::string("timeout"));
        pollfd p{fd_.get(), POLLIN, 0};
        int r = ::poll(&p, 1, int(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return std::unexpected(std::string("timeout"));
        char buf[65536];
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return std::unexpected(std::string("closed"));
        if (n < 0) return std::unexpected(fmt::format("recv: {}", std::strerror(errno)));
        buffer_.append(buf, size_t(n));
    }
}

std::expected<nlohmann::json, std::string> ControlClient::call(nlohmann::json request, std::chrono::milliseconds timeout) {
    uint64_t id = next_id_++;
    request["id"] = id;
    if (auto r = send_line(request.dump()); !r) return std::unexpected(r.error());
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto line = read_line(std::max(left, std::chrono::milliseconds(0)));
        if (!line) return std::unexpected(line.error() == "closed" ? std::string("vireo closed the connection") : line.error());
        auto j = nlohmann::json::parse(*line, nullptr, false);
        if (j.is_discarded()) return std::unexpected("vireo sent something that is not JSON: " + line->substr(0, 200));
        if (j.contains("event")) continue;
        if (j.contains("id") && j["id"] == id) return j;
        if (j.contains("id") && j["id"].is_null()) return j;  // an error about the connection itself
    }
}

}  // namespace vireo::control
