// Clock readings in nanoseconds: wall-clock time for records people read
// (events, decisions: CLOCK_REALTIME, shown as ISO 8601 UTC with
// milliseconds), and CLOCK_MONOTONIC for stamps compared within one boot
// (telemetry snapshots, deadlines; the clock std::chrono::steady_clock reads).
#pragma once

#include <time.h>

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace vireo {

inline int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline std::string iso8601(int64_t ns) {
    time_t secs = time_t(ns / 1000000000);
    tm t{};
    ::gmtime_r(&secs, &t);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                       t.tm_hour, t.tm_min, t.tm_sec, (ns / 1000000) % 1000);
}

}  // namespace vireo
