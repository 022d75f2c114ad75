#include "vmm/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace vireo {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};
std::atomic<bool> g_raw_tty{false};
}  // namespace

void set_log_raw_tty(bool raw) { g_raw_tty.store(raw, std::memory_order_relaxed); }

void set_log_level(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() { return g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, std::string_view message) {
    static constexpr std::string_view names[] = {"debug", "info", "warning", "error"};
    // One write(2) per line so lines from several threads never interleave;
    // "\r\n" while the console tty is in raw mode (no output translation).
    std::string line = fmt::format("vireo: {}: {}{}", names[int(level)], message,
                                   g_raw_tty.load(std::memory_order_relaxed) ? "\r\n" : "\n");
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

}  // namespace vireo
