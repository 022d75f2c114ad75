// The control socket server under load and abuse, with a stand-in handler
// (parse, answer, publish one event per request) on its own loop thread:
//  - 16 clients x 10,000 requests in total: every response correct, and
//    subscribers see every event, in order, none lost;
//  - 1 MiB without a newline: that client gets too_large and is cut off,
//    the others go on;
//  - a subscriber that does not read is dropped (counted), nobody waits;
//  - a client that stops reading its responses is back-pressured, not lost;
//  - a client gone mid-line leaves nothing behind;
//  - a peer of another uid is refused (as root, with a child that becomes
//    `nobody`); the socket file is 0600.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/control/client.h"
#include "vmm/control/control_server.h"
#include "vmm/event_bus.h"

namespace vireo::control {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override { dir_ = make_dir(); }
    void TearDown() override {
        stop();
        std::filesystem::remove_all(dir_);
    }

    static std::string make_dir() {
        char tmpl[] = "/tmp/vireo-ctl-test-XXXXXX";
        char* d = ::mkdtemp(tmpl);
        EXPECT_NE(d, nullptr);
        return d ? d : "/tmp";
    }

    void start(ServerLimits limits = {}) {
        path_ = dir_ + "/s.sock";
        auto loop = EventLoop::create();
        ASSERT_TRUE(loop) << loop.error();
        loop_ = std::move(*loop);
        auto server = ControlServer::listen(
            *loop_, path_,
            {[this](ControlServer::ClientId id, const PeerCred&, std::string_view line) { on_line(id, line); },
             [this](ControlServer::ClientId id) {
                 if (auto it = subs_.find(id); it != subs_.end()) {
                     bus_.unsubscribe(it->second);
                     subs_.erase(it);
                 }
             }},
            limits);
        ASSERT_TRUE(server) << server.error();
        server_ = std::move(*server);
        thread_ = std::thread([this] { loop_->run(); });
    }

    void stop() {
        if (!thread_.joinable()) return;
        loop_->post([this] {
            server_.reset();
            loop_->stop();
        });
        thread_.join();
    }

    // Runs `fn` on the loop thread and waits for it.
    template <class F>
    auto on_loop(F fn) {
        std::promise<decltype(fn())> p;
        auto f = p.get_future();
        loop_->post([&] { p.set_value(fn()); });
        return f.get();
    }

    // The stand-in handler: answers {"echo": request name, "n": ...} and
    // publishes one event per answered request.
    void on_line(ControlServer::ClientId id, std::string_view line) {
        auto r = parse_request(line);
        if (!r) {
            server_->send(id, error_line(r.error().id, r.error().error));
            return;
        }
        if (r->name == "events") {
            subs_[id] = bus_.subscribe([this, id](const Event& e) { server_->send(id, event_line(e), true); });
            server_->send(id, result_line(r->id, {{"subscribed", true}, {"next_seq", bus_.next_seq()}}));
            return;
        }
        server_->send(id, result_line(r->id, {{"echo", r->name}}));
        bus_.publish("answered", "", {{"request", r->name}});
    }

    std::string dir_, path_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<ControlServer> server_;
    std::thread thread_;
    EventBus bus_{1 << 16};
    std::map<ControlServer::ClientId, EventBus::SubscriberId> subs_;
};

int raw_connect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

TEST_F(ServerTest, SocketFileIsPrivateAndExclusive) {
    start();
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // A second server on a live path is refused; on a stale file it replaces it.
    auto loop2 = EventLoop::create();
    ASSERT_TRUE(loop2);
    auto second = ControlServer::listen(**loop2, path_, {[](auto, auto&, auto) {}, {}});
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
    stop();
    // The socket file went away with the server.
    EXPECT_NE(::access(path_.c_str(), F_OK), 0);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);  // a stale socket: bound, never listening
    ::close(fd);
    auto third = ControlServer::listen(**loop2, path_, {[](auto, auto&, auto) {}, {}});
    EXPECT_TRUE(third) << (third ? "" : third.error());
}

TEST_F(ServerTest, SixteenClientsTenThousandRequestsNoLostEvent) {
    start();
    constexpr int kClients = 16, kTotal = 10000, kSubscribers = 2;
    // Subscribers first, so they see every event of the load.
    std::vector<ControlClient> subs;
    for (int i = 0; i < kSubscribers; ++i) {
        auto c = ControlClient::connect(path_);
        ASSERT_TRUE(c) << c.error();
        auto r = c->call({{"request", "events"}});
        ASSERT_TRUE(r && r->contains("result")) << (r ? r->dump() : r.error());
        subs.push_back(std::move(*c));
    }
    std::atomic<int> good{0}, wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kClients; ++t)
        threads.emplace_back([&, t] {
            auto c = ControlClient::connect(path_);
            if (!c) return void(wrong += kTotal / kClients);
            const char* names[] = {"info", "list", "metrics"};
            for (int i = 0; i < kTotal / kClients; ++i) {
                const char* name = names[(t + i) % 3];
                auto r = c->call({{"request", name}});
                if (r && r->contains("result") && (*r)["result"]["echo"] == name) ++good;
                else ++wrong;
            }
        });
    // Subscribers read concurrently with the load.
    std::vector<std::future<std::pair<uint64_t, bool>>> readers;
    for (auto& s : subs)
        readers.push_back(std::async(std::launch::async, [&s] {
            uint64_t expect = 1, got = 0;
            bool in_order = true;
            while (got < uint64_t(kTotal)) {
                auto line = s.read_line(20s);
                if (!line) break;
                auto j = json::parse(*line);
                if (j["event"]["seq"].get<uint64_t>() != expect) in_order = false;
                ++expect, ++got;
            }
            return std::pair{got, in_order};
        }));
    for (auto& t : threads) t.join();
    EXPECT_EQ(good.load(), kTotal);
    EXPECT_EQ(wrong.load(), 0);
    for (auto& r : readers) {
        auto [got, in_order] = r.get();
        EXPECT_EQ(got, uint64_t(kTotal)) << "a subscriber lost events";
        EXPECT_TRUE(in_order);
    }
    EXPECT_EQ(on_loop([&] { return server_->stats().dropped_slow; }), 0u);
}

TEST_F(ServerTest, OneMebibyteWithoutNewlineIsCutOffOthersGoOn) {
    start();
    auto other = ControlClient::connect(path_);
    ASSERT_TRUE(other);
    int fd = raw_connect(path_);
    ASSERT_GE(fd, 0);
    // Write the 1 MiB from a thread: the server stops reading at 64 KiB and
    // closes, so the writer sees EPIPE/ECONNRESET part-way -- as it should.
    std::thread writer([fd] {
        std::string blob(1 << 20, 'x');
        size_t off = 0;
        while (off < blob.size()) {
            ssize_t n = ::send(fd, blob.data() + off, blob.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += size_t(n);
        }
    });
    // Meanwhile the other client is served.
    for (int i = 0; i < 50; ++i) {
        auto r = other->call({{"request", "info"}});
        ASSERT_TRUE(r && r->contains("result"));
    }
    std::string got;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, size_t(n));
    }
    writer.join();
    ::close(fd);
    auto j = json::parse(got.substr(0, got.find('\n')), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << got;
    EXPECT_EQ(j["error"]["code"], "too_large") << got;
    EXPECT_TRUE(j["id"].is_null());
    auto r = other->call({{"request", "list"}});
    ASSERT_TRUE(r && r->contains("result"));
    EXPECT_EQ(on_loop([&] { return server_->stats().oversize; }), 1u);
}

TEST_F(ServerTest, SlowSubscriberIsDroppedNotWaitedFor) {
    ServerLimits limits;
    limits.max_stream_output = 64 * 1024;
    start(limits);
    int slow = raw_connect(path_);
    ASSERT_GE(slow, 0);
    int small = 4096;
    ::setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string req = "{\"id\":1,\"request\":\"events\"}\n";
    ASSERT_EQ(::send(slow, req.data(), req.size(), 0), ssize_t(req.size()));
    auto fast = ControlClient::connect(path_);
    ASSERT_TRUE(fast);
    // ... and never reads. Every answered request publishes an event.
    std::this_thread::sleep_for(50ms);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 8000; ++i) {
        auto r = fast->call({{"request", "info"}}, 5s);
        ASSERT_TRUE(r && r->contains("result")) << "request " << i;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
    EXPECT_EQ(on_loop([&] { return server_->stats().dropped_slow; }), 1u);
    EXPECT_EQ(on_loop([&] { return subs_.size(); }), 0u);
    ::close(slow);
}

TEST_F(ServerTest, UnreadResponsesApplyBackPressureAndLoseNothing) {
    start();
    int fd = raw_connect(path_);
    ASSERT_GE(fd, 0);
    constexpr int kN = 20000;
    std::string all;
    for (int i = 1; i <= kN; ++i) all += fmt::format("{{\"id\":{},\"request\":\"list\"}}\n", i);
    // Send everything before reading anything (a writer thread: the socket
    // fills up once the server stops reading).
    std::thread writer([&] {
        size_t off = 0;
        while (off < all.size()) {
            ssize_t n = ::send(fd, all.data() + off, all.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += size_t(n);
        }
    });
    std::this_thread::sleep_for(300ms);
    std::string got;
    int lines = 0, next_id = 1;
    bool ordered = true;
    char buf[65536];
    while (lines < kN) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, size_t(n));
        size_t nl;
        while ((nl = got.find('\n')) != std::string::npos) {
            auto j = json::parse(got.substr(0, nl));
            got.erase(0, nl + 1);
            if (j["id"] != next_id++) ordered = false;
            ++lines;
        }
    }
    writer.join();
    ::close(fd);
    EXPECT_EQ(lines, kN);
    EXPECT_TRUE(ordered);
}

TEST_F(ServerTest, DisconnectMidRequestHarmsNothing) {
    start();
    for (int i = 0; i < 20; ++i) {
        int fd = raw_connect(path_);
        ASSERT_GE(fd, 0);
        std::string partial = "{\"id\":1,\"requ";
        ASSERT_GT(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL), 0);
        ::close(fd);
    }
    auto c = ControlClient::connect(path_);
    ASSERT_TRUE(c);
    auto r = c->call({{"request", "info"}});
    ASSERT_TRUE(r && r->contains("result"));
    // Everyone who left is gone from the server.
    for (int i = 0; i < 100 && on_loop([&] { return server_->client_count(); }) != 1; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(on_loop([&] { return server_->client_count(); }), 1u);
}

TEST_F(ServerTest, PeerOfAnotherUidIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user (run as root to test SO_PEERCRED)";
    passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user 'nobody' on this system";
    start();
    // Let `nobody` reach the socket at all, so the refusal is SO_PEERCRED's
    // and not the file mode's (which the next check covers).
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    auto child = [&](bool open_mode) -> int {
        ::chmod(path_.c_str(), open_mode ? 0666 : 0600);
        pid_t pid = ::fork();
        if (pid == 0) {
            if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(10);
            int fd = raw_connect(path_);
            if (fd < 0) ::_exit(errno == EACCES ? 20 : 21);
            std::string line;
            char c;
            while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
            char more;
            bool closed = ::read(fd, &more, 1) == 0;
            auto j = json::parse(line, nullptr, false);
            ::_exit(!j.is_discarded() && j["error"]["code"] == "forbidden" && closed ? 0 : 30);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    };
    EXPECT_EQ(child(true), 0) << "a peer of another uid must get one forbidden line and be closed";
    EXPECT_EQ(child(false), 20) << "mode 0600 keeps other users from connecting at all";
    EXPECT_GE(on_loop([&] { return server_->stats().refused_peers; }), 1u);
    // The owner is still welcome.
    auto c = ControlClient::connect(path_);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->call({{"request", "info"}}).value().contains("result"));
}

}  // namespace
}  // namespace vireo::control
