#include "vmm/devices/virtio/virtio_config.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <string_view>

#include <fmt/format.h>

namespace vireo {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        size_t p = s.find(sep);
        out.push_back(s.substr(0, p));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

std::expected<uint64_t, std::string> number(std::string_view text, uint64_t min, uint64_t max) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || text.empty())
        return std::unexpected(fmt::format("'{}' is not a number", text));
    if (v < min || v > max) return std::unexpected(fmt::format("{} is not in [{}, {}]", v, min, max));
    return v;
}

}  // namespace

std::expected<DiskConfig, std::string> parse_disk_spec(const std::string& spec) {
    auto parts = split(spec, ',');
    auto fail = [&](std::string why) { return std::unexpected(fmt::format("--disk {}: {}", spec, why)); };
    DiskConfig d;
    d.path = std::string(parts[0]);
    if (d.path.empty()) return fail("the image path is missing (--disk PATH[,ro][,direct][,queues=N][,queue-size=M])");
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view opt = parts[i];
        size_t eq = opt.find('=');
        std::string_view key = opt.substr(0, eq);
        std::string_view val = eq == std::string_view::npos ? std::string_view{} : opt.substr(eq + 1);
        bool has_val = eq != std::string_view::npos;
        if (key == "ro" || key == "direct") {
            if (has_val) return fail(fmt::format("'{}' takes no value", key));
            (key == "ro" ? d.read_only : d.direct) = true;
        } else if (key == "queues") {
            auto n = number(val, 1, DiskConfig::kMaxQueues);
            if (!n) return fail("queues: " + n.error());
            d.queues = unsigned(*n);
        } else if (key == "queue-size") {
            auto n = number(val, 2, DiskConfig::kMaxQueueSize);
            if (!n) return fail("queue-size: " + n.error());
            if (!std::has_single_bit(*n)) return fail(fmt::format("queue-size: {} is not a power of two", *n));
            d.queue_size = unsigned(*n);
        } else if (key == "poll") {
            auto n = number(val, 0, DiskConfig::kMaxPollUs);
            if (!n) return fail("poll: " + n.error() + " (microseconds)");
            d.poll_us = unsigned(*n);
        } else if (key == "serial") {
            if (val.empty() || val.size() > 20) return fail("serial: must be 1-20 characters");
            for (char c : val)
                if (c < 0x21 || c > 0x7e) return fail("serial: only printable ASCII without spaces");
            d.serial = std::string(val);
        } else if (key.empty()) {
            return fail("empty option (two commas?)");
        } else {
            return fail(fmt::format("unknown option '{}' (known: ro, direct, queues=N, queue-size=M, serial=S, poll=US)", key));
        }
    }
    return d;
}

std::expected<BalloonConfig, std::string> parse_balloon_spec(const std::string& spec) {
    BalloonConfig b;
    auto fail = [&](std::string why) { return std::unexpected(fmt::format("--balloon {}: {}", spec, why)); };
    if (spec.empty() || spec == "on") return b;
    for (std::string_view opt : split(spec, ',')) {
        size_t eq = opt.find('=');
        std::string_view key = opt.substr(0, eq);
        std::string_view val = eq == std::string_view::npos ? std::string_view{} : opt.substr(eq + 1);
        bool has_val = eq != std::string_view::npos;
        if (key == "deflate-on-oom" || key == "reporting") {
            if (has_val) return fail(fmt::format("'{}' takes no value", key));
            (key == "reporting" ? b.reporting : b.deflate_on_oom) = true;
        } else if (key == "stats") {
            auto n = number(val, 1, 3600);
            if (!n) return fail("stats: " + n.error() + " (seconds between stats requests)");
            b.stats_seconds = unsigned(*n);
        } else if (key == "target-at" || key == "target-after") {
            // Test-only (see BalloonTargetAt): SECONDS:MIB.
            size_t colon = val.find(':');
            if (colon == std::string_view::npos) return fail(fmt::format("{}: want SECONDS:MIB", key));
            std::string secs(val.substr(0, colon));
            char* end = nullptr;
            double s = std::strtod(secs.c_str(), &end);
            if (secs.empty() || end != secs.c_str() + secs.size() || !std::isfinite(s) || s < 0 || s > 86400)
                return fail(fmt::format("{}: '{}' is not a number of seconds", key, secs));
            auto mib = number(val.substr(colon + 1), 0, 1ull << 24);
            if (!mib) return fail(fmt::format("{}: {}", key, mib.error()));
            b.target_at.push_back({s, *mib, key == "target-after"});
        } else if (key.empty()) {
            return fail("empty option (two commas?)");
        } else {
            return fail(fmt::format("unknown option '{}' (known: deflate-on-oom, stats=SECONDS, reporting)", key));
        }
    }
    return b;
}

}  // namespace vireo
