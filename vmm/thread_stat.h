// What the kernel says about one of our threads (/proc/self/task/TID/stat):
// the host CPU it ran on last and where its time went. For the `vcpus`
// request and `vireoctl top`; not a hot path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace vireo {

struct ThreadStat {
    int processor = -1;       // field 39: CPU number last executed on
    char state = '?';         // field 3: R, S, D, ...
    uint64_t user_ns = 0;     // field 14 utime (includes guest time)
    uint64_t system_ns = 0;   // field 15 stime
    uint64_t guest_ns = 0;    // field 43 guest_time: in guest mode (0 where KVM does not account it)
};

// Parses the text of a stat file (pure, for tests). Fields are counted
// after the last ')', since the thread name may hold spaces and ')'.
std::optional<ThreadStat> parse_thread_stat(std::string_view text, long ticks_per_second);
// nullopt if the thread is gone.
std::optional<ThreadStat> read_thread_stat(pid_t tid);

}  // namespace vireo
