#include "vmm/metrics/metrics_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "vmm/log.h"
#include "vmm/send_buffer.h"

namespace vireo {

std::expected<std::pair<std::string, uint16_t>, std::string> parse_listen_address(const std::string& text) {
    auto fail = [&](std::string_view why) {
        return std::unexpected(fmt::format("--metrics-listen '{}': {} (want ADDRESS:PORT, e.g. 127.0.0.1:9100)", text, why));
    };
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return fail("no port");
    std::string host = text.substr(0, colon);
    std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port_text.empty() || port > 65535)
        return fail("the port is not a number from 0 to 65535");
    in6_addr a6;
    in_addr a4;
    if (::inet_pton(AF_INET, host.c_str(), &a4) != 1 && ::inet_pton(AF_INET6, host.c_str(), &a6) != 1)
        return fail("the address is not a numeric IPv4 or IPv6 address");
    return std::pair{host, uint16_t(port)};
}

std::expected<std::unique_ptr<MetricsListener>, std::string> MetricsListener::listen(EventLoop& loop, const std::string& address,
                                                                                    std::function<std::string()> render) {
    auto hp = parse_listen_address(address);
    if (!hp) return std::unexpected(hp.error());
    const auto& [host, port] = *hp;
    sockaddr_storage ss{};
    socklen_t len;
    in_addr a4;
    if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = a4;
        len = sizeof *sin;
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        ::inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr);
        len = sizeof *sin6;
    }
    std::unique_ptr<MetricsListener> m(new MetricsListener(loop, std::move(render)));
    m->fd_.reset(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!m->fd_) return std::unexpected(fmt::format("--metrics-listen {}: socket: {}", address, std::strerror(errno)));
    int one = 1;
    ::setsockopt(m->fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(m->fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return std::unexpected(fmt::format("--metrics-listen {}: bind: {}", address, std::strerror(errno)));
    if (::listen(m->fd_.get(), 64) != 0)
        return std::unexpected(fmt::format("--metrics-listen {}: listen: {}", address, std::strerror(errno)));
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(m->fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
    m->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    m->address_ = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, m->port_) : fmt::format("{}:{}", host, m->port_);
    MetricsListener* self = m.get();
    if (auto r = loop.add(m->fd_.get(), EPOLLIN, [self](uint32_t) { self->on_accept(); }); !r)
        return std::unexpected("--metrics-listen: " + r.error());
    return m;
}

MetricsListener::~MetricsListener() {
    for (auto& [id, c] : conns_) {
        loop_.remove(c.fd.get());
        loop_.cancel(c.timer);
    }
    if (fd_) loop_.remove(fd_.get());
}

void MetricsListener::on_accept() {
    for (;;) {
        int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;
        }
        if (conns_.size() >= kMaxConnections) {
            if (stats_.refused++ == 0)
                log_warn("metrics: {} connections open, the limit; refusing more (vireo_metrics_refused_total)", kMaxConnections);
            static constexpr std::string_view busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            ssize_t ignored = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)ignored;
            ::close(fd);
            continue;
        }
        uint64_t id = next_id_++;
        Conn& c = conns_[id];
        c.fd.reset(fd);
        // A client that never finishes its request does not hold a slot forever.
        c.timer = loop_.after(kTimeout, [this, id] {
            if (conns_.count(id)) {
                conns_[id].timer = 0;
                ++stats_.bad;
                close_conn(id);
            }
        });
        if (!loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, id](uint32_t ev) { on_conn(id, ev); })) {
            loop_.cancel(c.timer);
            conns_.erase(id);
        }
    }
}

void MetricsListener::on_conn(uint64_t id, uint32_t events) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    if (c.responding) {
        if (send_pending(c.fd.get(), c.out, c.out_pos) == SendProgress::would_block) return;
        return close_conn(id);  // all sent (Connection: close) or broken
    }
    if (events & EPOLLIN) {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (n > 0) {
                c.in.append(buf, size_t(n));
                if (c.in.size() > kMaxRequestHead) break;
                continue;
            }
            if (n == 0) return close_conn(id);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return close_conn(id);
        }
    } else if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        return close_conn(id);
    }
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end == std::string::npos) {
        if (c.in.size() > kMaxRequestHead) {
            ++stats_.bad;
            respond(id, 431, "Request Header Fields Too Large", "text/plain", "request head over 8 KiB\n");
        }
        return;
    }
    // Request line: METHOD SP TARGET SP VERSION.
    std::string_view head(c.in.data(), end);
    std::string_view line = head.substr(0, head.find_first_of("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
        ++stats_.bad;
        return respond(id, 400, "Bad Request", "text/plain", "malformed request line\n");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    bool head_only = method == "HEAD";
    if (method != "GET" && !head_only)
        return respond(id, 405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
    if (target == "/metrics") {
        ++stats_.scrapes;
        return respond(id, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_(), head_only);
    }
    if (target == "/")
        return respond(id, 200, "OK", "text/plain; charset=utf-8", "vireo: Prometheus metrics are at /metrics\n", head_only);
    respond(id, 404, "Not Found", "text/plain", "not found; try /metrics\n", head_only);
}

void MetricsListener::respond(uint64_t id, int status, std::string_view reason, std::string_view content_type,
                              std::string body, bool head_only, std::string_view extra_headers) {
    Conn& c = conns_.at(id);
    ++stats_.responses;
    c.out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n", status,
                        reason, content_type, body.size(), extra_headers);
    if (!head_only) c.out += body;
    c.responding = true;
    c.in.clear();
    loop_.modify(c.fd.get(), EPOLLOUT);
    on_conn(id, EPOLLOUT);
}

void MetricsListener::close_conn(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    if (it->second.timer) loop_.cancel(it->second.timer);
    loop_.remove(it->second.fd.get());
    conns_.erase(it);
}

}  // namespace vireo
