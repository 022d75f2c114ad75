#include "vmm/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace vireo {

namespace {
// VIREO_LOG=debug|info|warning|error sets the starting level, so start-up
// phases can be timed without a flag (the command line is parsed later).
LogLevel level_from_environment() {
    const char* env = std::getenv("VIREO_LOG");
    if (!env) return LogLevel::Info;
    std::string_view v = env;
    if (v == "debug") return LogLevel::Debug;
    if (v == "warning" || v == "warn") return LogLevel::Warn;
    if (v == "error") return LogLevel::Error;
    return LogLevel::Info;
}
std::atomic<LogLevel> g_level{level_from_environment()};
std::atomic<bool> g_raw_tty{false};
std::atomic<bool> g_holding{false};
std::mutex g_held_mutex;
std::vector<std::string> g_held;  // lines held back by a HeldLog

void write_line(const std::string& line) {
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}
}  // namespace

HeldLog::HeldLog() { g_holding.store(true, std::memory_order_release); }

HeldLog::~HeldLog() {
    std::lock_guard lock(g_held_mutex);
    g_holding.store(false, std::memory_order_release);
    g_held.clear();
}

void HeldLog::commit() {
    std::lock_guard lock(g_held_mutex);
    g_holding.store(false, std::memory_order_release);
    for (const auto& l : g_held) write_line(l);
    g_held.clear();
}

void set_log_raw_tty(bool raw) { g_raw_tty.store(raw, std::memory_order_relaxed); }

void set_log_level(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() { return g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, std::string_view message) {
    static constexpr std::string_view names[] = {"debug", "info", "warning", "error"};
    // One write(2) per line so lines from several threads never interleave;
    // "\r\n" while the console tty is in raw mode (no output translation).
    std::string line = fmt::format("vireo: {}: {}{}", names[int(level)], message,
                                   g_raw_tty.load(std::memory_order_relaxed) ? "\r\n" : "\n");
    if (level < LogLevel::Warn && g_holding.load(std::memory_order_acquire)) {
        std::lock_guard lock(g_held_mutex);
        if (g_holding.load(std::memory_order_relaxed)) {
            g_held.push_back(std::move(line));
            return;
        }
    }
    write_line(line);
}

}  // namespace vireo
