#include "vmm/devices/console.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using test::FakeStopSink;

std::span<const uint8_t> bytes(std::string_view s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// ------------------------------------------------------------ spec parsing

TEST(ConsoleSpec, ParsesTheThreeModes) {
    auto s = parse_console_spec("stdio");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->mode, ConsoleSpec::Mode::Stdio);
    s = parse_console_spec("none");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->mode, ConsoleSpec::Mode::None);
    s = parse_console_spec("file:/var/log/guest console.log");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->mode, ConsoleSpec::Mode::File);
    EXPECT_EQ(s->path, "/var/log/guest console.log");
}

TEST(ConsoleSpec, RejectsUnknownModesWithOneLine) {
    auto s = parse_console_spec("foo");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "--console: unknown mode 'foo' (expected stdio, file:PATH or none)");
    for (const char* bad : {"", "STDIO", "file", "stdio:", "none ", "pty"}) {
        auto r = parse_console_spec(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().find('\n'), std::string::npos);
        EXPECT_TRUE(r.error().starts_with("--console: ")) << r.error();
    }
}

TEST(ConsoleSpec, FileNeedsAPath) {
    auto s = parse_console_spec("file:");
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().find("file:PATH"), std::string::npos);
}

// ------------------------------------------------------------ escapes

struct Fed {
    std::string to_guest;
    std::vector<ConsoleEscape::Command> commands;
};
Fed feed(ConsoleEscape& e, std::string_view input) {
    Fed f;
    std::vector<uint8_t> out;
    for (char c : input) {
        auto cmd = e.feed(uint8_t(c), out);
        if (cmd != ConsoleEscape::Command::None) f.commands.push_back(cmd);
    }
    f.to_guest.assign(out.begin(), out.end());
    return f;
}

TEST(ConsoleEscape, CtrlAXQuits) {
    ConsoleEscape e;
    auto f = feed(e, "ls\r\x01x");
    EXPECT_EQ(f.to_guest, "ls\r");
    EXPECT_EQ(f.commands, std::vector{ConsoleEscape::Command::Quit});
}

TEST(ConsoleEscape, CtrlACtrlASendsOneCtrlA) {
    ConsoleEscape e;
    auto f = feed(e, "a\x01\x01" "b");
    EXPECT_EQ(f.to_guest, "a\x01" "b");
    EXPECT_TRUE(f.commands.empty());
}

TEST(ConsoleEscape, HelpAndUnknownKeys) {
    ConsoleEscape e;
    auto f = feed(e, "\x01h\x01?\x01z!");
    EXPECT_EQ(f.to_guest, "!");  // an unknown escape drops both keys
    EXPECT_EQ(f.commands, (std::vector{ConsoleEscape::Command::Help, ConsoleEscape::Command::Help}));
}

TEST(ConsoleEscape, EscapeSpansReads) {
    ConsoleEscape e;
    auto f1 = feed(e, "abc\x01");
    EXPECT_TRUE(e.escape_pending());
    EXPECT_EQ(f1.to_guest, "abc");
    auto f2 = feed(e, "x");
    EXPECT_FALSE(e.escape_pending());
    EXPECT_EQ(f2.commands, std::vector{ConsoleEscape::Command::Quit});
    auto f3 = feed(e, "x");  // a plain x afterwards is just a key
    EXPECT_EQ(f3.to_guest, "x");
}

// ------------------------------------------------------------ console I/O

struct Pipe {
    Pipe() {
        int fds[2];
        EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
        r = UniqueFd(fds[0]);
        w = UniqueFd(fds[1]);
    }
    UniqueFd r, w;
};

std::string read_some(int fd, size_t want, std::chrono::milliseconds timeout = 5s) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, size_t(n));
    }
    return got;
}

struct Collected {
    std::mutex m;
    std::condition_variable cv;
    std::string data;
    Console::InputSink sink() {
        return [this](std::span<const uint8_t> b) {
            std::lock_guard lock(m);
            data.append(b.begin(), b.end());
            cv.notify_all();
        };
    }
    std::string wait_for(size_t n) {
        std::unique_lock lock(m);
        cv.wait_for(lock, 5s, [&] { return data.size() >= n; });
        return data;
    }
};

TEST(Console, OutputIsWrittenInFull) {
    FakeStopSink stop;
    Pipe out;
    auto console = Console::over_fds(-1, out.w.get(), stop);
    // Larger than a pipe's buffer: the write must loop over partial writes.
    std::string big(300000, 'g');
    for (size_t i = 0; i < big.size(); i += 97) big[i] = char('a' + i % 26);
    std::string got;
    std::thread reader([&] { got = read_some(out.r.get(), big.size()); });
    console->write(bytes(big));
    reader.join();
    EXPECT_EQ(got, big);
    EXPECT_EQ(console->output_bytes(), big.size());
}

TEST(Console, InputGoesToTheSinkAndCtrlAXStops) {
    FakeStopSink stop;
    Pipe in, out;
    auto console = Console::over_fds(in.r.get(), out.w.get(), stop);
    Collected c;
    ASSERT_TRUE(console->start_input(c.sink()));
    EXPECT_FALSE(console->raw_mode());  // a pipe is not a terminal
    ASSERT_EQ(::write(in.w.get(), "uname\r", 6), 6);
    EXPECT_EQ(c.wait_for(6), "uname\r");
    ASSERT_EQ(::write(in.w.get(), "\x01h", 2), 2);
    EXPECT_NE(read_some(out.r.get(), 30).find("C-a x"), std::string::npos);
    ASSERT_EQ(::write(in.w.get(), "q\x01x", 3), 3);
    for (int i = 0; i < 500 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
    auto r = stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::Operator);
    EXPECT_EQ(c.wait_for(7), "uname\rq");
    console->stop_input();
    console->stop_input();  // idempotent
}

TEST(Console, InputThreadStopsAfterEndOfInputAndWithout) {
    FakeStopSink stop;
    {
        Pipe in;
        auto console = Console::over_fds(in.r.get(), -1, stop);
        Collected c;
        ASSERT_TRUE(console->start_input(c.sink()));
        in.w.reset();  // end of input: the thread keeps waiting for stop only
        std::this_thread::sleep_for(20ms);
    }  // the destructor stops and joins it
    {
        Pipe in;
        auto console = Console::over_fds(in.r.get(), -1, stop);
        Collected c;
        ASSERT_TRUE(console->start_input(c.sink()));
    }  // stopped while blocked in poll
    EXPECT_TRUE(stop.requests().empty());
}

TEST(Console, NoneDiscardsAndCounts) {
    FakeStopSink stop;
    auto console = Console::open(ConsoleSpec{ConsoleSpec::Mode::None, {}}, stop);
    ASSERT_TRUE(console);
    (*console)->write(bytes("hello"));
    EXPECT_EQ((*console)->output_discarded(), 5u);
    Collected c;
    EXPECT_TRUE((*console)->start_input(c.sink()));  // nothing to read: no thread
}

TEST(Console, FileModeAppends) {
    FakeStopSink stop;
    char path[] = "/tmp/vireo-console-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "old\n", 4), 4);
    close(fd);
    {
        auto console = Console::open(ConsoleSpec{ConsoleSpec::Mode::File, path}, stop);
        ASSERT_TRUE(console) << console.error();
        (*console)->write(bytes("new output\n"));
    }
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_EQ(ss.str(), "old\nnew output\n");
    unlink(path);
}

TEST(Console, FileModeReportsAnUnopenablePath) {
    FakeStopSink stop;
    auto console = Console::open(ConsoleSpec{ConsoleSpec::Mode::File, "/nonexistent-dir/x.log"}, stop);
    ASSERT_FALSE(console);
    EXPECT_NE(console.error().find("/nonexistent-dir/x.log"), std::string::npos);
    EXPECT_TRUE(console.error().starts_with("--console: "));
}

TEST(Console, WriteErrorDiscardsFurtherOutput) {
    struct sigaction ignore = {}, old;
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &old);
    FakeStopSink stop;
    Pipe out;
    out.r.reset();  // nobody reads: EPIPE
    auto console = Console::over_fds(-1, out.w.get(), stop);
    console->write(bytes("abc"));
    console->write(bytes("defg"));
    EXPECT_EQ(console->output_discarded(), 7u);
    EXPECT_EQ(console->output_bytes(), 0u);
    sigaction(SIGPIPE, &old, nullptr);
}

// ------------------------------------------------------------ raw terminal

struct Pty {
    Pty() {
        master = UniqueFd(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
        EXPECT_TRUE(master.valid());
        EXPECT_EQ(grantpt(master.get()), 0);
        EXPECT_EQ(unlockpt(master.get()), 0);
        slave = UniqueFd(::open(ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
        EXPECT_TRUE(slave.valid());
    }
    bool canonical() const {
        struct termios t;
        return tcgetattr(slave.get(), &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO);
    }
    UniqueFd master, slave;
};

TEST(Console, TerminalIsRawWhileInputRunsAndRestoredAfter) {
    Pty pty;
    ASSERT_TRUE(pty.canonical());
    FakeStopSink stop;
    auto console = Console::over_fds(pty.slave.get(), -1, stop);
    Collected c;
    ASSERT_TRUE(console->start_input(c.sink()));
    EXPECT_TRUE(console->raw_mode());
    EXPECT_FALSE(pty.canonical());
    struct sigaction now;
    sigaction(SIGTERM, nullptr, &now);
    EXPECT_NE(now.sa_handler, SIG_DFL);  // a restoring handler while raw
    // Raw: bytes arrive one by one, Ctrl-C included, no line editing.
    ASSERT_EQ(::write(pty.master.get(), "a\x03", 2), 2);
    EXPECT_EQ(c.wait_for(2), "a\x03");
    console->stop_input();
    EXPECT_TRUE(pty.canonical());
    EXPECT_FALSE(console->raw_mode());
    sigaction(SIGTERM, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(Console, TerminalIsRestoredWhenASignalKillsUs) {
    // "fast" (fork) style: the child must share this pty, not make its own.
    GTEST_FLAG_SET(death_test_style, "fast");
    Pty pty;
    EXPECT_EXIT(
        {
            FakeStopSink stop;
            auto console = Console::over_fds(pty.slave.get(), -1, stop);
            Collected c;
            if (!console->start_input(c.sink()) || pty.canonical()) _exit(7);
            raise(SIGTERM);
            _exit(8);  // not reached: SIGTERM kills
        },
        testing::KilledBySignal(SIGTERM), "");
    EXPECT_TRUE(pty.canonical());
}

TEST(Console, TerminalIsRestoredOnExit) {
    // "fast" (fork) style: the child must share this pty, not make its own.
    GTEST_FLAG_SET(death_test_style, "fast");
    Pty pty;
    EXPECT_EXIT(
        {
            FakeStopSink stop;
            // Never destroyed: only the exit-time restore can put the
            // terminal back. (Static, so leak checkers see it reachable.)
            static Console* console = Console::over_fds(pty.slave.get(), -1, stop).release();
            Collected c;
            if (!console->start_input(c.sink()) || pty.canonical()) _exit(7);
            std::exit(0);
        },
        testing::ExitedWithCode(0), "");
    EXPECT_TRUE(pty.canonical());
}

}  // namespace
}  // namespace vireo
