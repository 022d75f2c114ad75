// vireo's log: one line per event on stderr, "vireo: LEVEL: message".
// fmt formats (g++ 12 has no <format>).
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace vireo {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, std::string_view message);
// The console puts the tty in raw mode; log lines then end in \r\n.
void set_log_raw_tty(bool raw);

// Holds back info and debug lines (warnings and errors pass) until
// commit(); without it they are dropped. A host that builds several guests
// and then fails on one prints its one error line, not the lines of the
// guests built before it. One at a time.
class HeldLog {
public:
    HeldLog();
    ~HeldLog();
    HeldLog(const HeldLog&) = delete;
    HeldLog& operator=(const HeldLog&) = delete;
    void commit();
};

template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::Debug) log_line(LogLevel::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::Info) log_line(LogLevel::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::Warn) log_line(LogLevel::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
    log_line(LogLevel::Error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace vireo
