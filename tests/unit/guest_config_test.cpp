// The host config file: a full example, and bad files -- each one error
// line that names the file, the guest and the key.
#include <gtest/gtest.h>

#include <string>

#include "vmm/guest_config.h"

namespace vireo {
namespace {

std::string bad(const std::string& text) {
    auto r = parse_host_config(text, "h.json");
    EXPECT_FALSE(r) << text;
    if (r) return {};
    EXPECT_EQ(r.error().find('\n'), std::string::npos) << "one line: " << r.error();
    EXPECT_EQ(r.error().rfind("h.json: ", 0), 0u) << r.error();
    return r.error();
}

#define EXPECT_MENTIONS(s, what) EXPECT_NE((s).find(what), std::string::npos) << "want \"" << (what) << "\" in: " << (s)

TEST(HostConfig, FullExample) {
    auto r = parse_host_config(R"({
        // comments are allowed
        "name": "lab", "control": "/tmp/x.sock", "metrics_listen": "127.0.0.1:9100",
        "controller": {"mode": "advise", "limits": {"balloon_step_percent": 10, "pin_interval_s": 5}},
        "guests": [
          {"name": "web", "kernel": "k", "initrd": "i", "cmdline": "c", "cpus": 2, "mem": "512M",
           "console": "file:/tmp/web.log", "disks": ["a.img,ro", "b.img"], "balloon": "stats=5",
           "restart": {"policy": "on-failure", "backoff_initial_s": 0.5, "backoff_max_s": 8, "max_failures": 3},
           "pin": {"0": [1], "1": "0-1"}, "shutdown_timeout_s": 5, "controller": "auto", "probes": "off",
           "class": "latency-sensitive"},
          {"name": "db", "kernel": "k2", "mem": 128, "balloon": true, "restart": "always", "class": "auto"}
        ]})",
                               "h.json");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->name, "lab");
    EXPECT_EQ(r->control_path, "/tmp/x.sock");
    EXPECT_EQ(r->metrics_listen, "127.0.0.1:9100");
    EXPECT_EQ(r->controller_mode, ControllerMode::Advise);
    EXPECT_EQ(r->controller_limits.balloon_step_percent, 10u);
    EXPECT_EQ(r->controller_limits.pin_interval_s, 5u);
    EXPECT_FALSE(r->exit_when_all_stopped);
    ASSERT_EQ(r->guests.size(), 2u);
    const auto& w = r->guests[0];
    EXPECT_EQ(w.name(), "web");
    EXPECT_EQ(w.machine.cpus, 2u);
    EXPECT_EQ(w.machine.mem_bytes, 512ull << 20);
    EXPECT_EQ(w.machine.console, "file:/tmp/web.log");
    ASSERT_EQ(w.machine.disks.size(), 2u);
    EXPECT_TRUE(w.machine.disks[0].read_only);
    ASSERT_TRUE(w.machine.balloon);
    EXPECT_EQ(w.machine.balloon->stats_seconds, 5u);
    EXPECT_EQ(w.restart.mode, RestartMode::OnFailure);
    EXPECT_EQ(w.restart.backoff_initial, std::chrono::milliseconds(500));
    EXPECT_EQ(w.restart.max_failures, 3u);
    EXPECT_EQ(w.pinning.at(0), (CpuList{1}));
    EXPECT_EQ(w.pinning.at(1), (CpuList{0, 1}));
    EXPECT_EQ(w.shutdown_timeout, std::chrono::seconds(5));
    EXPECT_EQ(*w.controller_mode, ControllerMode::Auto);
    EXPECT_EQ(w.machine.probes, ProbeMode::Off);
    EXPECT_EQ(w.guest_class, agent::GuestClass::LatencySensitive);
    const auto& d = r->guests[1];
    EXPECT_EQ(d.machine.mem_bytes, 128ull << 20);
    EXPECT_EQ(d.machine.console, "none");  // the host default: guests do not share the terminal
    EXPECT_TRUE(d.machine.balloon);
    EXPECT_EQ(d.restart.mode, RestartMode::Always);
    EXPECT_FALSE(d.controller_mode);
    EXPECT_EQ(d.guest_class, agent::GuestClass::Unknown);  // auto: inferred
}

TEST(HostConfig, Errors) {
    EXPECT_MENTIONS(bad("{"), "not valid JSON");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "cpus": 1E999}]})"), "not valid JSON");
    EXPECT_MENTIONS(bad("[]"), "JSON object");
    EXPECT_MENTIONS(bad(R"({"guests": []})"), "'guests'");
    EXPECT_MENTIONS(bad(R"({"guest": []})"), "unknown key 'guest'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"kernel": "k"}]})"), "guest #1: 'name' is missing");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "a b", "kernel": "k"}]})"), "guest #1: 'name'");
    std::string e = bad(R"({"guests": [{"name": "web", "kernel": "k", "cpu": 2}]})");
    EXPECT_MENTIONS(e, "guest 'web'");
    EXPECT_MENTIONS(e, "unknown key 'cpu'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k"}, {"name": "w", "kernel": "k"}]})"), "unique");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w"}]})"), "'kernel' is missing");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "cpus": 0}]})"), "'cpus'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "cpus": "2"}]})"), "'cpus' must be an integer");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "mem": "8M"}]})"), "too small");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "mem": "1Q"}]})"), "'mem'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "pin": {"1": [0]}}]})"), "vCPU 1 does not exist");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "pin": {"x": [0]}}]})"), "'pin'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "pin": {"0": []}}]})"), "pin.0");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "restart": {"policy": "sometimes"}}]})"), "restart.policy");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "restart": {"backoff_initial_s": 10, "backoff_max_s": 1}}]})"),
                    "backoff_max_s");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "restart": {"tries": 1}}]})"), "unknown key 'tries'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "disks": ["a.img,bogus"]}]})"), "disks");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "balloon": 3}]})"), "'balloon'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "console": "tty"}]})"), "'console'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "a", "kernel": "k", "console": "stdio"}, {"name": "b", "kernel": "k", "console": "stdio"}]})"),
                    "only one guest may use stdio");
    EXPECT_MENTIONS(bad(R"({"controller": {"mode": "on"}, "guests": [{"name": "w", "kernel": "k"}]})"), "controller.mode");
    EXPECT_MENTIONS(bad(R"({"controller": {"limits": {"x": 1}}, "guests": [{"name": "w", "kernel": "k"}]})"), "unknown key 'x'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "controller": "sometimes"}]})"), "'controller'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "class": "web"}]})"), "'class': 'web' is not");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "class": "unknown"}]})"), "'class'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "class": 1}]})"), "'class'");
}

TEST(HostConfig, LoadMissingFile) {
    auto r = load_host_config("/nonexistent/vireo.json");
    ASSERT_FALSE(r);
    EXPECT_MENTIONS(r.error(), "/nonexistent/vireo.json");
}

TEST(HostConfig, HangAndWatchdog) {
    auto c = parse_host_config(R"({"guests": [
          {"name": "a", "kernel": "k", "hang": {"min_s": 2, "factor": 3, "max_s": 60}, "watchdog": {"timeout_s": 10}},
          {"name": "b", "kernel": "k", "hang": false, "watchdog": true},
          {"name": "c", "kernel": "k"}]})",
                               "t.json");
    ASSERT_TRUE(c) << c.error();
    const auto& a = c->guests[0];
    EXPECT_TRUE(a.hang.enabled);
    EXPECT_EQ(a.hang.min, std::chrono::seconds(2));
    EXPECT_EQ(a.hang.factor, 3.0);
    ASSERT_TRUE(a.machine.watchdog);
    EXPECT_EQ(a.machine.watchdog->timeout, std::chrono::seconds(10));
    EXPECT_FALSE(c->guests[1].hang.enabled);
    ASSERT_TRUE(c->guests[1].machine.watchdog);
    EXPECT_FALSE(c->guests[1].machine.watchdog->timeout);  // the guest's own
    EXPECT_TRUE(c->guests[2].hang.enabled);                // on by default
    EXPECT_FALSE(c->guests[2].machine.watchdog);           // off by default
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "hang": {"min_s": 0}}]})"), "hang.min_s");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "hang": {"factor": 0.5}}]})"), "hang.factor");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "hang": {"min_s": 10, "max_s": 5}}]})"), "hang.max_s");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "watchdog": {"timeout": 5}}]})"), "unknown key 'timeout'");
    EXPECT_MENTIONS(bad(R"({"guests": [{"name": "w", "kernel": "k", "watchdog": "yes"}]})"), "'watchdog' must be");
}

TEST(HostConfig, CommandLineSpecs) {
    auto r = parse_restart_spec("on-failure,backoff_initial_s=0.2,backoff_max_s=1,max_failures=3,window_s=60");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->mode, RestartMode::OnFailure);
    EXPECT_EQ(r->backoff_initial, std::chrono::milliseconds(200));
    EXPECT_EQ(r->backoff_max, std::chrono::seconds(1));
    EXPECT_EQ(r->max_failures, 3u);
    EXPECT_EQ(r->failure_window, std::chrono::seconds(60));
    EXPECT_EQ(parse_restart_spec("always")->mode, RestartMode::Always);
    EXPECT_MENTIONS(parse_restart_spec("sometimes").error(), "--restart: 'restart.policy': 'sometimes'");
    EXPECT_MENTIONS(parse_restart_spec("on-failure,max_failures=2.5").error(), "whole number");
    EXPECT_MENTIONS(parse_restart_spec("on-failure,bogus=1").error(), "unknown key 'bogus'");
    EXPECT_MENTIONS(parse_restart_spec("on-failure,never").error(), "not KEY=VALUE");
    EXPECT_MENTIONS(parse_restart_spec("on-failure,window_s=1,window_s=2").error(), "given twice");
    EXPECT_FALSE(parse_hang_spec("off")->enabled);
    EXPECT_TRUE(parse_hang_spec("on")->enabled);
    auto h = parse_hang_spec("min_s=1.5,factor=2");
    ASSERT_TRUE(h) << h.error();
    EXPECT_EQ(h->min, std::chrono::milliseconds(1500));
    EXPECT_MENTIONS(parse_hang_spec("sometimes").error(), "--hang");
    EXPECT_FALSE(parse_watchdog_spec("")->timeout);
    EXPECT_EQ(parse_watchdog_spec("timeout_s=3")->timeout, std::chrono::seconds(3));
    EXPECT_MENTIONS(parse_watchdog_spec("timeout_s=abc").error(), "watchdog.timeout_s");
}

}  // namespace
}  // namespace vireo
