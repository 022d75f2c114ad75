#include "vmm/devices/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

#include "vmm/log.h"
#include "vmm/security/seccomp_filters.h"

namespace vireo {

// ---------------------------------------------------------------- spec

std::expected<ConsoleSpec, std::string> parse_console_spec(std::string_view text) {
    if (text == "stdio") return ConsoleSpec{ConsoleSpec::Mode::Stdio, {}};
    if (text == "none") return ConsoleSpec{ConsoleSpec::Mode::None, {}};
    if (text.starts_with("file:")) {
        std::string_view path = text.substr(5);
        if (path.empty()) return std::unexpected(std::string("--console: 'file:' needs a path (file:PATH)"));
        return ConsoleSpec{ConsoleSpec::Mode::File, std::string(path)};
    }
    return std::unexpected(
        fmt::format("--console: unknown mode '{}' (expected stdio, file:PATH or none)", text));
}

// ---------------------------------------------------------------- escapes

ConsoleEscape::Command ConsoleEscape::feed(uint8_t byte, std::vector<uint8_t>& to_guest) {
    if (!escaped_) {
        if (byte == kEscapeKey)
            escaped_ = true;
        else
            to_guest.push_back(byte);
        return Command::None;
    }
    escaped_ = false;
    switch (byte) {
        case kEscapeKey: to_guest.push_back(kEscapeKey); return Command::None;
        case 'x': return Command::Quit;
        case 'h':
        case '?': return Command::Help;
        default: return Command::None;  // unknown escape: both keys dropped, as QEMU does
    }
}

// ---------------------------------------------------------------- raw tty

namespace {

// What a signal handler needs to put the terminal back. Plain globals:
// written before any handler is installed, read only with async-signal-safe
// calls. At most one RawTty exists at a time.
volatile sig_atomic_t g_raw_fd = -1;
struct termios g_saved_termios;

constexpr std::array kRestoreSignals = {SIGHUP, SIGINT,  SIGQUIT, SIGILL,  SIGABRT,
                                        SIGFPE, SIGSEGV, SIGBUS,  SIGPIPE, SIGTERM};

void restore_tty_now() {
    int fd = g_raw_fd;
    if (fd >= 0) {
        tcsetattr(fd, TCSANOW, &g_saved_termios);
        g_raw_fd = -1;
    }
}

void restore_tty_on_signal(int sig) {
    restore_tty_now();
    set_log_raw_tty(false);  // a lock-free atomic store
    // SA_RESETHAND already put back the default action: re-raise so the
    // signal does what it would have done (it is delivered once we return;
    // a fault re-faults on return the same way).
    raise(sig);
}

void restore_tty_at_exit() { restore_tty_now(); }

}  // namespace

// Puts a terminal in raw mode for its lifetime.
class RawTty {
    struct Key {
        explicit Key() = default;
    };

public:
    explicit RawTty(Key) {}  // only enter() can make the key

    static std::unique_ptr<RawTty> enter(int fd) {
        struct termios saved;
        if (tcgetattr(fd, &saved) != 0) return nullptr;
        struct termios raw = saved;
        cfmakeraw(&raw);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        g_saved_termios = saved;
        g_raw_fd = fd;
        static bool atexit_registered = false;
        if (!atexit_registered) atexit_registered = std::atexit(restore_tty_at_exit) == 0;
        // A seccomp violation ends vireo with _exit(): the terminal first.
        security::set_seccomp_exit_hook(restore_tty_now);
        auto tty = std::make_unique<RawTty>(Key{});
        tty->install_signal_handlers();
        if (tcsetattr(fd, TCSANOW, &raw) != 0) {
            int err = errno;
            log_warn("console: cannot put the terminal in raw mode: {}", strerror(err));
            return nullptr;  // the destructor undoes the rest
        }
        set_log_raw_tty(true);
        return tty;
    }

    ~RawTty() {
        restore_tty_now();
        set_log_raw_tty(false);
        for (size_t i = 0; i < kRestoreSignals.size(); ++i) {
            if (!installed_[i]) continue;
            // Put back the default only if our handler is still there (the
            // machine may have installed its own since).
            struct sigaction now;
            if (sigaction(kRestoreSignals[i], nullptr, &now) == 0 && now.sa_handler == restore_tty_on_signal)
                sigaction(kRestoreSignals[i], &previous_[i], nullptr);
        }
    }
    RawTty(const RawTty&) = delete;
    RawTty& operator=(const RawTty&) = delete;

private:
    void install_signal_handlers() {
        for (size_t i = 0; i < kRestoreSignals.size(); ++i) {
            struct sigaction old;
            if (sigaction(kRestoreSignals[i], nullptr, &old) != 0) continue;
            // Only signals that would kill us silently: a handler someone
            // else installed (the machine's SIGINT/SIGTERM) leads to an
            // orderly shutdown, which restores the terminal anyway.
            if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
            struct sigaction sa = {};
            sa.sa_handler = restore_tty_on_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESETHAND;
            if (sigaction(kRestoreSignals[i], &sa, nullptr) == 0) {
                installed_[i] = true;
                previous_[i] = old;
            }
        }
    }

    std::array<bool, kRestoreSignals.size()> installed_{};
    std::array<struct sigaction, kRestoreSignals.size()> previous_{};
};

// ---------------------------------------------------------------- console

Console::Console(Key, StopSink& stop, int input_fd, int output_fd, UniqueFd owned_output)
    : stop_(stop), input_fd_(input_fd), output_fd_(output_fd), owned_output_(std::move(owned_output)) {}

Console::~Console() { stop_input(); }

std::expected<std::unique_ptr<Console>, std::string> Console::open(const ConsoleSpec& spec, StopSink& stop) {
    switch (spec.mode) {
        case ConsoleSpec::Mode::Stdio:
            return std::make_unique<Console>(Key{}, stop, STDIN_FILENO, STDOUT_FILENO, UniqueFd());
        case ConsoleSpec::Mode::None:
            return std::make_unique<Console>(Key{}, stop, -1, -1, UniqueFd());
        case ConsoleSpec::Mode::File: {
            UniqueFd fd(::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644));
            if (!fd)
                return std::unexpected(
                    fmt::format("--console: cannot open '{}' for appending: {}", spec.path, strerror(errno)));
            int raw = fd.get();
            return std::make_unique<Console>(Key{}, stop, -1, raw, std::move(fd));
        }
    }
    return std::unexpected(std::string("--console: unknown mode"));
}

std::unique_ptr<Console> Console::over_fds(int input_fd, int output_fd, StopSink& stop) {
    return std::make_unique<Console>(Key{}, stop, input_fd, output_fd, UniqueFd());
}

void Console::write(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return;
    if (output_fd_ < 0) {
        output_discarded_.fetch_add(bytes.size(), std::memory_order_relaxed);
        return;
    }
    std::lock_guard lock(output_mutex_);
    if (output_failed_) {
        output_discarded_.fetch_add(bytes.size(), std::memory_order_relaxed);
        return;
    }
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(output_fd_, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Someone made our stdout non-blocking (a shared terminal):
            // wait until it takes more rather than spin or drop.
            struct pollfd p = {output_fd_, POLLOUT, 0};
            if (::poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
        }
        int err = n < 0 ? errno : EIO;
        output_failed_ = true;
        output_discarded_.fetch_add(bytes.size() - done, std::memory_order_relaxed);
        log_warn("console: writing guest output failed: {}; further output is discarded (counted)", strerror(err));
        break;
    }
    output_bytes_.fetch_add(done, std::memory_order_relaxed);
}

void Console::write_text(std::string_view text) {
    std::string out;
    bool raw = raw_mode();
    for (char c : text) {
        if (c == '\n' && raw) out += '\r';  // no output translation in raw mode
        out += c;
    }
    write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
}

bool Console::raw_mode() const { return raw_active_.load(std::memory_order_relaxed); }

std::expected<void, std::string> Console::start_input(InputSink sink) {
    if (input_fd_ < 0 || input_thread_.joinable()) return {};
    if (isatty(input_fd_)) {
        // A background job touching its controlling terminal is stopped by
        // SIGTTIN or SIGTTOU: leave it alone. (tcgetpgrp fails for a
        // terminal that is not our controlling one; that one is fine.)
        pid_t foreground = tcgetpgrp(input_fd_);
        if (foreground >= 0 && foreground != getpgrp()) {
            log_info("console: not the terminal's foreground job; console input is off");
            return {};
        }
    }
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return std::unexpected(fmt::format("console: eventfd: {}", strerror(errno)));
    wake_ = std::move(wake);
    sink_ = std::move(sink);
    if (isatty(input_fd_)) {
        raw_ = RawTty::enter(input_fd_);
        raw_active_.store(raw_ != nullptr, std::memory_order_relaxed);
    }
    try {
        input_thread_ = std::thread([this] { input_loop(); });
    } catch (const std::system_error& e) {
        raw_active_.store(false, std::memory_order_relaxed);
        raw_.reset();
        wake_.reset();
        return std::unexpected(fmt::format("console: cannot start the input thread: {}", e.what()));
    }
    return {};
}

void Console::stop_input() {
    if (input_thread_.joinable()) {
        uint64_t one = 1;
        // Never fails short of a counter overflow; the thread exits on any
        // readable state of the eventfd.
        ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
        (void)ignored;
        input_thread_.join();
    }
    raw_active_.store(false, std::memory_order_relaxed);
    raw_.reset();  // restores the terminal
    wake_.reset();
}

void Console::input_loop() {
    ::pthread_setname_np(::pthread_self(), "console");
    security::seccomp_install(security::ThreadKind::Console, "console");  // least privilege: only the calls a console thread makes
    std::array<uint8_t, 512> buf;
    bool input_open = true;
    for (;;) {
        std::array<struct pollfd, 2> fds = {{{wake_.get(), POLLIN, 0}, {input_fd_, POLLIN, 0}}};
        int n = ::poll(fds.data(), input_open ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log_warn("console: poll: {}; console input stops", strerror(errno));
            return;
        }
        if (fds[0].revents) return;
        if (!input_open || !fds[1].revents) continue;
        ssize_t r = ::read(input_fd_, buf.data(), buf.size());
        if (r > 0) {
            handle_input(std::span<const uint8_t>(buf.data(), size_t(r)));
        } else if (r == 0) {
            log_debug("console: end of input");
            input_open = false;  // keep waiting for the stop signal only
        } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            log_warn("console: reading input: {}; console input stops", strerror(errno));
            input_open = false;
        }
    }
}

void Console::handle_input(std::span<const uint8_t> bytes) {
    std::vector<uint8_t> to_guest;
    to_guest.reserve(bytes.size());
    for (uint8_t b : bytes) {
        switch (escape_.feed(b, to_guest)) {
            case ConsoleEscape::Command::None: break;
            case ConsoleEscape::Command::Help:
                write_text(
                    "\nvireo console escapes:\n"
                    "  C-a x    stop the VM and exit\n"
                    "  C-a h    print this help\n"
                    "  C-a C-a  send C-a to the guest\n");
                break;
            case ConsoleEscape::Command::Quit:
                // What the guest was sent before the escape still arrives.
                if (!to_guest.empty() && sink_) sink_(to_guest);
                to_guest.clear();
                log_info("console: C-a x pressed, stopping the VM");
                stop_.request_stop({StopReason::Operator, 0, "console: C-a x"});
                break;
        }
    }
    if (!to_guest.empty() && sink_) sink_(to_guest);
}

}  // namespace vireo
