// `--metrics-listen ADDR:PORT`: Prometheus scrapes over HTTP/1.1, served on
// the control thread's event loop.
//
// Why not cpp-httplib (vireo prefers a library where one fits):
// Debian 12's libcpp-httplib-dev is not the header-only build. Its
// httplib.h holds declarations only and links a shared libcpp-httplib.so
// built with OpenSSL, zlib and brotli, which vireo (static libstdc++, a
// 4 MiB RSS budget) would have to load in every run: measured, a minimal
// program grows from 1.3 MiB to 7.9 MiB RSS with 12 more shared objects.
// Its server also brings a thread pool of at least 8 threads against the
// one control thread (ARCHITECTURE.md, Threads). A scrape endpoint needs one request
// line and a response, so it is served here with bounded buffers, a
// connection limit and a timeout instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "vmm/event_loop.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

struct MetricsListenerStats {
    uint64_t scrapes = 0;     // 200 responses to /metrics
    uint64_t responses = 0;   // all responses
    uint64_t refused = 0;     // over the connection limit
    uint64_t bad = 0;         // malformed, too long, timed out
};

class MetricsListener {
public:
    static constexpr size_t kMaxConnections = 32;
    static constexpr size_t kMaxRequestHead = 8192;
    static constexpr std::chrono::seconds kTimeout{10};

    // "127.0.0.1:9100", "[::1]:9100", "0.0.0.0:0" (port 0: any free port;
    // port() tells which). `render` runs on the loop thread per scrape.
    static std::expected<std::unique_ptr<MetricsListener>, std::string> listen(EventLoop& loop, const std::string& address,
                                                                              std::function<std::string()> render);
    ~MetricsListener();
    MetricsListener(const MetricsListener&) = delete;
    MetricsListener& operator=(const MetricsListener&) = delete;

    uint16_t port() const { return port_; }
    const std::string& address() const { return address_; }  // as bound, with the real port
    const MetricsListenerStats& stats() const { return stats_; }

private:
    struct Conn {
        UniqueFd fd;
        std::string in, out;
        size_t out_pos = 0;
        bool responding = false;
        EventLoop::TimerId timer = 0;
    };
    MetricsListener(EventLoop& loop, std::function<std::string()> render) : loop_(loop), render_(std::move(render)) {}
    void on_accept();
    void on_conn(uint64_t id, uint32_t events);
    void respond(uint64_t id, int status, std::string_view reason, std::string_view content_type, std::string body,
                 bool head_only = false, std::string_view extra_headers = {});
    void close_conn(uint64_t id);

    EventLoop& loop_;
    std::function<std::string()> render_;
    UniqueFd fd_;
    uint16_t port_ = 0;
    std::string address_;
    std::unordered_map<uint64_t, Conn> conns_;
    uint64_t next_id_ = 1;
    MetricsListenerStats stats_;
};

// Splits "HOST:PORT" / "[V6]:PORT"; the error names --metrics-listen.
std::expected<std::pair<std::string, uint16_t>, std::string> parse_listen_address(const std::string& text);

}  // namespace vireo
