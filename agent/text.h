// printf-style formatting into a std::string for decision reasons: the
// agent uses the standard library only (g++ 12 has no <format>), and the
// format attribute lets -Wformat check every call.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>

namespace vireo::agent {

[[gnu::format(printf, 1, 2)]] inline std::string strfmt(const char* format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) return {};
    if (size_t(n) < sizeof small) return std::string(small, size_t(n));
    std::string out(size_t(n), '\0');
    va_start(args, format);
    std::vsnprintf(out.data(), out.size() + 1, format, args);
    va_end(args);
    return out;
}

inline double mib(uint64_t bytes) { return double(bytes) / double(1 << 20); }

}  // namespace vireo::agent
