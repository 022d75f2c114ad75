#include "vmm/control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "vmm/log.h"
#include "vmm/send_buffer.h"

namespace vireo::control {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Per wake-up, so one busy client cannot starve the others (epoll is level
// triggered: what is left is read on the next round).
constexpr size_t kReadBudget = 256 * 1024;

std::expected<sockaddr_un, std::string> unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return std::unexpected(fmt::format("control socket path '{}' must be 1 to {} bytes", path, sizeof addr.sun_path - 1));
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

// A best-effort write of one line on a socket we are about to close.
void say_and_close(int fd, std::string_view line) {
    std::string l(line);
    l += '\n';
    ssize_t ignored = ::send(fd, l.data(), l.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    ::close(fd);
}

}  // namespace

std::expected<std::unique_ptr<ControlServer>, std::string> ControlServer::listen(EventLoop& loop, const std::string& path,
                                                                                Handlers handlers, ServerLimits limits) {
    auto addr = unix_address(path);
    if (!addr) return std::unexpected(addr.error());

    namespace fs = std::filesystem;
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        if (!fs::exists(parent, ec)) {
            fs::create_directories(parent, ec);
            if (ec) return std::unexpected(fmt::format("control socket: cannot create {}: {}", parent.string(), ec.message()));
            ::chmod(parent.c_str(), 0700);
        }
    }

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return std::unexpected(fmt::format("control socket: {} exists and is not a socket", path));
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0)
            return std::unexpected(fmt::format("control socket: {} is in use by a running process (another vireo?)", path));
        ::unlink(path.c_str());  // stale: nobody listens
    }

    std::unique_ptr<ControlServer> s(new ControlServer(loop, path, std::move(handlers), limits));
    s->listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s->listen_fd_) return std::unexpected(fmt::format("control socket: socket: {}", std::strerror(errno)));
    // The file gets its mode from the umask at bind: 0600 from the start,
    // so there is no moment in which another user could connect.
    mode_t old = ::umask(0177);
    int rc = ::bind(s->listen_fd_.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
    int err = errno;
    ::umask(old);
    if (rc != 0) return std::unexpected(fmt::format("control socket: bind {}: {}", path, std::strerror(err)));
    ::chmod(path.c_str(), 0600);
    if (::lstat(path.c_str(), &st) == 0) s->dev_ = st.st_dev, s->ino_ = st.st_ino;
    if (::listen(s->listen_fd_.get(), SOMAXCONN) != 0)
        return std::unexpected(fmt::format("control socket: listen {}: {}", path, std::strerror(errno)));
    ControlServer* self = s.get();
    if (auto r = loop.add(s->listen_fd_.get(), EPOLLIN, [self](uint32_t) { self->on_accept(); }); !r)
        return std::unexpected("control socket: " + r.error());
    return s;
}

ControlServer::~ControlServer() {
    for (auto& [id, c] : clients_) loop_.remove(c.fd.get());
    clients_.clear();
    if (listen_fd_) {
        loop_.remove(listen_fd_.get());
        // Only our own file: a newer vireo may have replaced it.
        struct stat st {};
        if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
    }
}

void ControlServer::on_accept() {
    for (;;) {
        int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) log_warn("control socket: accept: {}", std::strerror(errno));
            return;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            ::close(fd);
            continue;
        }
        PeerCred peer{cred.pid, cred.uid, cred.gid};
        if (peer.uid != 0 && peer.uid != ::geteuid()) {
            if (stats_.refused_peers++ < 16)
                log_warn("control socket: refused pid {} uid {} (only uid {} or root may connect)", peer.pid, peer.uid,
                         ::geteuid());
            say_and_close(fd, error_line(nullptr, {ErrorCode::Forbidden,
                                                   fmt::format("uid {} may not use this socket (only uid {} or root)",
                                                               peer.uid, ::geteuid())}));
            continue;
        }
        if (clients_.size() >= limits_.max_clients) {
            if (stats_.refused_full++ == 0)
                log_warn("control socket: {} clients connected, the limit; refusing more (counted in "
                         "vireo_control_refused_total{{reason=\"full\"}})",
                         limits_.max_clients);
            say_and_close(fd, error_line(nullptr, {ErrorCode::Unavailable,
                                                   fmt::format("too many clients (limit {})", limits_.max_clients)}));
            continue;
        }
        ClientId id = next_id_++;
        Client& c = clients_[id];
        c.fd.reset(fd);
        c.peer = peer;
        ++stats_.accepted;
        if (auto r = loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, id](uint32_t ev) { on_client(id, ev); }); !r) {
            log_warn("control socket: {}", r.error());
            clients_.erase(id);
        }
    }
}

void ControlServer::on_client(ClientId id, uint32_t events) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (events & EPOLLOUT) {
        if (!flush(c)) return drop(id);
        if (c.closing && c.out_pos == c.out.size()) return drop(id);
        if (!c.closing && !c.reading && c.out.size() - c.out_pos < limits_.output_high_water / 2) {
            c.reading = true;
            process_lines(id);  // requests that arrived while we were not reading
            if (!clients_.count(id)) return;
        }
        update_interest(clients_.at(id));
    }
    if ((events & EPOLLIN) && c.reading) {
        size_t budget = kReadBudget;
        bool eof = false;
        while (budget > 0) {
            char buf[kReadChunk];
            ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (n > 0) {
                c.in.append(buf, size_t(n));
                budget -= std::min(budget, size_t(n));
                // Bound what one client can make us hold: a line can be no
                // longer than the limit, so more than that without a newline
                // is refused before reading further.
                if (c.in.size() - c.in_pos > limits_.max_message && c.in.find('\n', c.in_pos) == std::string::npos) break;
                if (size_t(n) < sizeof buf) break;
                continue;
            }
            if (n == 0) eof = true;
            else if (errno == EINTR) continue;
            else if (errno != EAGAIN && errno != EWOULDBLOCK) eof = true;
            break;
        }
        process_lines(id);
        if (!clients_.count(id)) return;
        if (eof) return drop(id);  // mid-line input is simply discarded
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        return drop(id);
    }
    if (events & EPOLLRDHUP && !(events & EPOLLIN)) return drop(id);
}

void ControlServer::process_lines(ClientId id) {
    for (;;) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;
        Client& c = it->second;
        if (!c.reading || c.closing) return;
        size_t nl = c.in.find('\n', c.in_pos);
        if (nl == std::string::npos) {
            // Keep only the unfinished line (once, not per line: many small
            // lines in one read must not cost a copy each).
            c.in.erase(0, c.in_pos);
            c.in_pos = 0;
            if (c.in.size() > limits_.max_message) {
                ++stats_.oversize;
                size_t got = c.in.size();
                c.in.clear();
                close_client(id, error_line(nullptr, {ErrorCode::TooLarge,
                                                      fmt::format("message over {} bytes without a newline ({} so far); "
                                                                  "closing the connection",
                                                                  limits_.max_message, got)}));
            }
            return;
        }
        size_t len = nl - c.in_pos;
        if (len > limits_.max_message) {
            ++stats_.oversize;
            close_client(id, error_line(nullptr, {ErrorCode::TooLarge, fmt::format("message of {} bytes is over the {} byte "
                                                                                   "limit; closing the connection",
                                                                                   len, limits_.max_message)}));
            return;
        }
        std::string line = c.in.substr(c.in_pos, len);
        c.in_pos = nl + 1;
        PeerCred peer = c.peer;
        ++stats_.lines;
        if (line.empty() || line == "\r") continue;  // blank lines (interactive socat) are not requests
        handlers_.on_line(id, peer, line);
        // The handler may have answered (back-pressure now?) or closed us.
        auto again = clients_.find(id);
        if (again == clients_.end()) return;
        if (again->second.out.size() - again->second.out_pos > limits_.output_high_water) {
            again->second.reading = false;
            update_interest(again->second);
            return;
        }
    }
}

bool ControlServer::flush(Client& c) {
    if (send_pending(c.fd.get(), c.out, c.out_pos) == SendProgress::broken) return false;
    if (c.out_pos == c.out.size()) {
        c.out.clear();
        c.out_pos = 0;
    } else if (c.out_pos > 64 * 1024 && c.out_pos > c.out.size() / 2) {
        c.out.erase(0, c.out_pos);  // keep the buffer from growing with what was already sent
        c.out_pos = 0;
    }
    return true;
}

void ControlServer::update_interest(Client& c) {
    uint32_t ev = EPOLLRDHUP;
    if (c.reading && !c.closing) ev |= EPOLLIN;
    if (c.out_pos < c.out.size()) ev |= EPOLLOUT;
    loop_.modify(c.fd.get(), ev);
}

bool ControlServer::send(ClientId id, std::string_view line, bool stream) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return false;
    Client& c = it->second;
    if (c.closing) return false;
    size_t pending = c.out.size() - c.out_pos;
    if (stream && pending + line.size() + 1 > limits_.max_stream_output) {
        ++stats_.dropped_slow;
        log_warn("control socket: dropped pid {}: {} bytes of events unread (limit {})", c.peer.pid, pending,
                 limits_.max_stream_output);
        drop(id);
        return false;
    }
    c.out.append(line);
    c.out += '\n';
    if (!flush(c)) {
        drop(id);
        return false;
    }
    update_interest(c);
    return true;
}

void ControlServer::close_client(ClientId id, std::string_view last_line) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (!last_line.empty()) {
        c.out.append(last_line);
        c.out += '\n';
    }
    c.closing = true;
    c.reading = false;
    // Stop reading: what the peer still sends is dropped with the socket.
    ::shutdown(c.fd.get(), SHUT_RD);
    if (!flush(c) || c.out_pos == c.out.size()) return drop(id);
    update_interest(c);
}

void ControlServer::drop(ClientId id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    loop_.remove(it->second.fd.get());
    clients_.erase(it);
    ++stats_.disconnects;
    if (handlers_.on_close) handlers_.on_close(id);
}

}  // namespace vireo::control
