#include "vmm/thread_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include <fmt/format.h>

namespace vireo {

std::optional<ThreadStat> parse_thread_stat(std::string_view text, long ticks_per_second) {
    size_t close = text.rfind(')');
    if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
    std::string_view rest = text.substr(close + 1);
    // Field 3 is the first one after ')'.
    ThreadStat st;
    unsigned field = 2;
    bool got_processor = false;
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (rest.empty()) break;
        size_t end = rest.find(' ');
        std::string_view tok = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        ++field;
        auto number = [&]() -> uint64_t {
            uint64_t v = 0;
            std::from_chars(tok.data(), tok.data() + tok.size(), v);
            return v;
        };
        auto ticks_ns = [&](uint64_t ticks) { return ticks * (1000000000ull / uint64_t(ticks_per_second)); };
        switch (field) {
            case 3: st.state = tok.empty() ? '?' : tok.front(); break;
            case 14: st.user_ns = ticks_ns(number()); break;
            case 15: st.system_ns = ticks_ns(number()); break;
            case 39: st.processor = int(number()), got_processor = true; break;
            case 43: st.guest_ns = ticks_ns(number()); break;
            default: break;
        }
    }
    if (!got_processor) return std::nullopt;
    return st;
}

std::optional<ThreadStat> read_thread_stat(pid_t tid) {
    if (tid <= 0) return std::nullopt;
    std::string path = fmt::format("/proc/self/task/{}/stat", tid);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    static const long ticks = ::sysconf(_SC_CLK_TCK);
    return parse_thread_stat(std::string_view(buf, size_t(n)), ticks);
}

}  // namespace vireo
