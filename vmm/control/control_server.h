// The control socket: a UNIX stream socket (mode 0600) served by the
// control thread's event loop. It knows bytes and lines, not requests:
// each complete line goes to the host's handler, which answers with send().
//
// Why it is built this way:
//  - peers are checked with SO_PEERCRED at accept: the same uid as vireo,
//    or root; anyone else gets one error line and is closed;
//  - every socket is non-blocking and every buffer bounded: a line longer
//    than the message limit gets a `too_large` error and the connection is
//    cut; a client that stops reading its responses is stopped being read
//    (back-pressure), and a subscriber that cannot keep up with its event
//    stream is dropped (counted, reported) -- the control thread never
//    blocks on a client and one client never costs the others;
//  - a client that disconnects mid-line leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "vmm/control/protocol.h"
#include "vmm/event_loop.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo::control {

struct PeerCred {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

struct ServerLimits {
    size_t max_message = kMaxMessage;
    size_t max_clients = 256;
    size_t output_high_water = 256 * 1024;  // above it a client's requests are not read until it reads
    size_t max_stream_output = 4 << 20;     // an event subscriber this far behind is dropped
};

struct ServerStats {
    uint64_t accepted = 0;
    uint64_t refused_peers = 0;    // SO_PEERCRED: another uid
    uint64_t refused_full = 0;     // max_clients reached
    uint64_t oversize = 0;         // cut off for a message over the limit
    uint64_t dropped_slow = 0;     // subscribers dropped for not reading
    uint64_t lines = 0;            // complete lines handed to the handler
    uint64_t disconnects = 0;
};

class ControlServer {
public:
    using ClientId = uint64_t;
    struct Handlers {
        std::function<void(ClientId, const PeerCred&, std::string_view line)> on_line;
        std::function<void(ClientId)> on_close;  // after the client is gone, whatever the reason
    };

    // Creates the parent directory (0700) if missing, refuses a path held by
    // a live server, replaces a stale socket file.
    static std::expected<std::unique_ptr<ControlServer>, std::string> listen(EventLoop& loop, const std::string& path,
                                                                            Handlers handlers, ServerLimits limits = {});
    ~ControlServer();  // closes every client, removes the socket file if it is still ours
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Queues `line` + '\n' for the client. A `stream` line (an event) drops
    // a client whose unread output would pass max_stream_output. Returns
    // false if the client is gone (or was just dropped).
    bool send(ClientId client, std::string_view line, bool stream = false);
    // Sends `last_line` (if any) as far as the socket takes it, then closes.
    void close_client(ClientId client, std::string_view last_line = {});
    bool connected(ClientId client) const { return clients_.count(client) != 0; }

    const std::string& path() const { return path_; }
    const ServerStats& stats() const { return stats_; }
    size_t client_count() const { return clients_.size(); }
    const ServerLimits& limits() const { return limits_; }

private:
    struct Client {
        UniqueFd fd;
        PeerCred peer;
        std::string in;
        size_t in_pos = 0;  // start of the first unprocessed line
        std::string out;
        size_t out_pos = 0;
        bool reading = true;  // false while back-pressured or closing
        bool closing = false;
    };

    ControlServer(EventLoop& loop, std::string path, Handlers handlers, ServerLimits limits)
        : loop_(loop), path_(std::move(path)), handlers_(std::move(handlers)), limits_(limits) {}
    void on_accept();
    void on_client(ClientId id, uint32_t events);
    void process_lines(ClientId id);
    bool flush(Client& c);  // false: the connection broke
    void update_interest(Client& c);
    void drop(ClientId id);

    EventLoop& loop_;
    std::string path_;
    Handlers handlers_;
    ServerLimits limits_;
    UniqueFd listen_fd_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::unordered_map<ClientId, Client> clients_;
    ClientId next_id_ = 1;
    ServerStats stats_;
};

}  // namespace vireo::control
