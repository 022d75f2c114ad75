// `vireo host` on this host's /dev/kvm with test guests, driven through the
// control socket, vireoctl and the metrics port:
//  - 4 guests: vireoctl list shows all; pin moves a vCPU thread (its
//    Cpus_allowed_list in /proc changes); balloon changes the guest's
//    balloon; poweroff of one leaves the others running; curl of the
//    metrics port returns valid exposition;
//  - every request's happy path, and its errors with nothing changed;
//  - 16 clients x 10,000 requests against the real process, subscribers
//    missing no event, a 1 MiB line cut off meanwhile;
//  - bad config files: exit 2, one line naming guest and key, nothing started.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <sstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/common/prom_check.h"
#include "tests/kvm/host_fixture.h"
#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"
#include "vmm/control/client.h"

namespace vireo::test {
namespace {

using json = nlohmann::json;
using control::ControlClient;
using namespace std::chrono_literals;

using Host = HostFixture;

TEST_F(Host, FourGuestsListPinBalloonPoweroffMetrics) {
    json guests = json::array();
    for (int i = 0; i < 4; ++i)
        guests.push_back(guest(fmt::format("g{}", i), "balloon", {{"balloon", "stats=1"}, {"probes", i == 0 ? "auto" : "off"}}));
    start(guests);
    ASSERT_FALSE(HasFailure());

    // vireoctl list shows all four, running.
    int st = -1;
    std::string list = ctl("list", &st);
    EXPECT_EQ(st, 0) << list;
    for (int i = 0; i < 4; ++i) EXPECT_NE(list.find(fmt::format("g{}  ", i)), std::string::npos) << list;
    json jl = json::parse(ctl("--json list"));
    ASSERT_EQ(jl["guests"].size(), 4u);
    for (const auto& g : jl["guests"]) EXPECT_EQ(g["state"], "running");

    // pin moves g1's vCPU thread: Cpus_allowed_list follows, both ways.
    pid_t tid = vcpu_tid("g1");
    ASSERT_GT(tid, 0);
    std::string before = cpus_allowed_list(proc_->pid(), tid);
    std::string out = ctl("pin g1 0 1", &st);
    EXPECT_EQ(st, 0) << out;
    EXPECT_EQ(cpus_allowed_list(proc_->pid(), tid), "1");
    ctl("pin g1 0 0", &st);
    EXPECT_EQ(cpus_allowed_list(proc_->pid(), tid), "0");
    ctl("unpin g1 0", &st);
    EXPECT_EQ(st, 0);
    EXPECT_EQ(cpus_allowed_list(proc_->pid(), tid), before);

    // balloon: the target reaches the device and the test guest follows it.
    out = ctl("balloon g2 16M", &st);
    EXPECT_EQ(st, 0) << out;
    json b;
    for (int i = 0; i < 100; ++i) {
        b = result({{"request", "balloon"}, {"guest", "g2"}})["balloon"];
        if (b["actual_bytes"] == 16u << 20) break;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(b["device_target_bytes"], 16u << 20) << b.dump();
    EXPECT_EQ(b["actual_bytes"], 16u << 20) << "the guest did not inflate: " << b.dump();
    EXPECT_GT(b["counters"]["discarded_bytes"].get<uint64_t>(), 0u) << b.dump();
    // The other guests' balloons did not move.
    EXPECT_EQ(result({{"request", "balloon"}, {"guest", "g3"}})["balloon"]["target_bytes"], 0);

    // poweroff of one leaves the others running.
    out = ctl("poweroff g3", &st);
    EXPECT_EQ(st, 0) << out;
    jl = json::parse(ctl("--json list"));
    for (const auto& g : jl["guests"]) EXPECT_EQ(g["state"], g["name"] == "g3" ? "stopped" : "running") << g.dump();
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(proc_->running());
    for (const auto& name : {"g0", "g1", "g2"}) {
        auto v1 = result({{"request", "vcpus"}, {"guest", name}})["vcpus"][0]["runs"].get<uint64_t>();
        std::this_thread::sleep_for(100ms);
        auto v2 = result({{"request", "vcpus"}, {"guest", name}})["vcpus"][0]["runs"].get<uint64_t>();
        EXPECT_GT(v2, v1) << name << " stopped running";
    }

    // curl the metrics port: valid exposition with guest/vCPU labels,
    // histograms and action counters.
    std::string url = info_["metrics"];
    std::string text = slurp_cmd("curl -sS --max-time 10 " + url, &st);
    ASSERT_EQ(st, 0) << "curl failed: " << text;
    auto problems = check_prometheus_text(text);
    std::string joined;
    for (const auto& p : problems) joined += p + "\n";
    EXPECT_TRUE(problems.empty()) << joined;
    EXPECT_NE(text.find("vireo_vcpu_runs_total{guest=\"g0\",vcpu=\"0\"}"), std::string::npos);
    EXPECT_NE(text.find("vireo_actions_total{source=\"admin\",kind=\"pin\",outcome=\"applied\"} 2"), std::string::npos);
    EXPECT_NE(text.find("vireo_guest_state{guest=\"g3\",state=\"stopped\"} 1"), std::string::npos);
    EXPECT_NE(text.find("vireo_balloon_actual_bytes{guest=\"g2\"} 16777216"), std::string::npos);
    EXPECT_NE(text.find("# TYPE vireo_vcpu_halt_wait_seconds histogram"), std::string::npos) << "binary stats histogram missing";
    // promtool, where it is installed, agrees.
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
        std::ofstream(dir_ + "/metrics.txt") << text;
        std::string p = slurp_cmd(fmt::format("promtool check metrics < {}/metrics.txt 2>&1", dir_), &st);
        EXPECT_EQ(st, 0) << p;
    }
    // HTTP errors are clean too.
    EXPECT_EQ(slurp_cmd("curl -s -o /dev/null -w '%{http_code}' " + url.substr(0, url.rfind('/')) + "/nope"), "404");
    EXPECT_EQ(slurp_cmd("curl -s -o /dev/null -w '%{http_code}' -X POST " + url), "405");
}

TEST_F(Host, EveryRequestAndItsErrorsChangeNothing) {
    start(json::array({guest("a", "balloon", {{"balloon", true}, {"cpus", 2}}), guest("b", "hang")}));
    ASSERT_FALSE(HasFailure());
    json base = observable_state();

    // Errors, each with nothing changed afterwards.
    struct Bad {
        json req;
        const char* code;
    } bads[] = {
        {{{"request", "teleport"}}, "unknown_request"},
        {{{"request", "pause"}, {"guest", "nope"}}, "unknown_guest"},
        {{{"request", "vcpus"}, {"guest", "zz"}}, "unknown_guest"},
        {{{"request", "pin"}, {"guest", "a"}, {"vcpu", 0}, {"cpus", json::array({999})}}, "out_of_range"},  // no such CPU
        {{{"request", "pin"}, {"guest", "a"}, {"vcpu", 5}, {"cpus", json::array({0})}}, "out_of_range"},    // no such vCPU
        {{{"request", "pin"}, {"guest", "a"}, {"vcpu", "0"}, {"cpus", json::array({0})}}, "bad_request"},   // bad type
        {{{"request", "unpin"}, {"guest", "a"}, {"vcpu", 9}}, "out_of_range"},
        {{{"request", "balloon"}, {"guest", "a"}, {"target", "1G"}}, "out_of_range"},  // above guest RAM
        {{{"request", "balloon"}, {"guest", "b"}, {"target", "1M"}}, "unavailable"},   // no balloon
        {{{"request", "balloon"}, {"guest", "a"}, {"target", "lots"}}, "bad_request"},
        {{{"request", "resume"}, {"guest", "a"}}, "conflict"},    // not paused
        {{{"request", "shutdown"}, {"guest", "b"}}, "conflict"},  // the test guest has no ACPI OS
        {{{"request", "controller"}, {"mode", "sometimes"}}, "bad_request"},
        {{{"request", "controller"}, {"limits", {{"balloon_step_percent", 500}}}}, "bad_request"},
        {{{"request", "undo"}, {"seq", 999999}}, "out_of_range"},
        {{{"request", "events"}, {"since", -1}}, "bad_request"},
        {{{"request", "decisions"}, {"limit", "ten"}}, "bad_request"},
        {{{"request", "list"}, {"extra", 1}}, "bad_request"},
    };
    for (const auto& b : bads) {
        EXPECT_EQ(error(b.req), b.code) << b.req.dump();
        EXPECT_EQ(observable_state(), base) << "state changed after " << b.req.dump();
    }
    {
        // Not JSON at all, and no id.
        auto c = ControlClient::connect(sock_);
        ASSERT_TRUE(c);
        ASSERT_TRUE(c->send_line("{nope"));
        auto line = c->read_line(5s);
        ASSERT_TRUE(line);
        json j = json::parse(*line);
        EXPECT_EQ(j["error"]["code"], "parse_error");
        EXPECT_TRUE(j["id"].is_null());
        ASSERT_TRUE(c->send_line(R"({"request":"info"})"));
        EXPECT_EQ(json::parse(c->read_line(5s).value())["error"]["code"], "bad_request");
    }
    EXPECT_EQ(observable_state(), base);

    // Happy paths.
    json info = result({{"request", "info"}});
    EXPECT_EQ(info["guests"], 2);
    EXPECT_EQ(info["control"], sock_);
    EXPECT_EQ(result({{"request", "list"}})["guests"].size(), 2u);
    json vc = result({{"request", "vcpus"}, {"guest", "a"}});
    ASSERT_EQ(vc["vcpus"].size(), 2u);
    EXPECT_EQ(vc["vcpus"][1]["thread"], "CPU 1/ga");
    EXPECT_TRUE(vc["vcpus"][0]["host_cpu"].is_number());
    EXPECT_TRUE(vc["vcpus"][0]["exits"].is_object());

    json p = result({{"request", "pin"}, {"guest", "a"}, {"vcpu", 1}, {"cpus", "0"}});
    EXPECT_EQ(p["outcome"], "applied");
    EXPECT_EQ(p["pinning"][1], "0");
    uint64_t pin_seq = p["seq"];
    json u = result({{"request", "undo"}, {"seq", pin_seq}});
    EXPECT_EQ(u["undone"], pin_seq);
    EXPECT_TRUE(result({{"request", "vcpus"}, {"guest", "a"}})["vcpus"][1]["pinned"].is_null());
    EXPECT_EQ(error({{"request", "undo"}, {"seq", pin_seq}}), "conflict");  // undone once only
    json up = result({{"request", "unpin"}, {"guest", "a"}});
    EXPECT_EQ(up["outcome"], "applied");

    json bl = result({{"request", "balloon"}, {"guest", "a"}, {"target", "8M"}});
    EXPECT_EQ(bl["balloon"]["target_bytes"], 8u << 20);
    EXPECT_EQ(result({{"request", "balloon"}, {"guest", "a"}})["balloon"]["target_bytes"], 8u << 20);
    EXPECT_EQ(result({{"request", "disks"}, {"guest", "a"}})["disks"].size(), 0u);
    json m = result({{"request", "metrics"}, {"guest", "b"}});
    ASSERT_EQ(m["guests"].size(), 1u);
    EXPECT_EQ(m["guests"][0]["vcpus"][0]["vcpu"], 0);

    // pause really stops the vCPU (the hang workload spins without exits);
    // resume lets it run again.
    pid_t tid = vcpu_tid("b");
    EXPECT_EQ(result({{"request", "pause"}, {"guest", "b"}})["state"], "paused");
    std::this_thread::sleep_for(100ms);
    uint64_t t0 = thread_cpu_ticks(proc_->pid(), tid);
    std::this_thread::sleep_for(500ms);
    EXPECT_LE(thread_cpu_ticks(proc_->pid(), tid) - t0, 1u) << "a paused vCPU kept running";
    EXPECT_EQ(result({{"request", "vcpus"}, {"guest", "b"}})["vcpus"][0]["parked"], true);
    EXPECT_EQ(error({{"request", "pause"}, {"guest", "b"}}), "conflict");
    EXPECT_EQ(result({{"request", "resume"}, {"guest", "b"}})["state"], "running");
    t0 = thread_cpu_ticks(proc_->pid(), tid);
    std::this_thread::sleep_for(500ms);
    EXPECT_GT(thread_cpu_ticks(proc_->pid(), tid) - t0, 5u) << "a resumed vCPU did not run";

    // Controller: mode, limits, per-guest override and release; all undoable.
    json c = result({{"request", "controller"}, {"mode", "advise"}, {"limits", {{"pin_interval_s", 5}}}});
    EXPECT_EQ(c["mode"], "advise");
    EXPECT_EQ(c["limits"]["pin_interval_s"], 5);
    EXPECT_EQ(c["guests"]["a"]["held"]["pin"], true);  // the admin pinned a above
    c = result({{"request", "controller"}, {"guest", "a"}, {"mode", "off"}, {"release", {"pin", "balloon"}}});
    EXPECT_EQ(c["guests"]["a"]["mode"], "off");
    EXPECT_EQ(c["guests"]["a"]["held"]["pin"], false);
    EXPECT_EQ(c["guests"]["a"]["effective_mode"], "off");

    // Restart: a new machine, a new thread, starts counted.
    pid_t old_tid = vcpu_tid("b");
    json rs = result({{"request", "restart"}, {"guest", "b"}, {"reason", "test"}});
    EXPECT_EQ(rs["state"], "running");
    EXPECT_NE(vcpu_tid("b"), old_tid);
    EXPECT_EQ(result({{"request", "list"}})["guests"][1]["restarts"], 1);

    EXPECT_EQ(result({{"request", "poweroff"}, {"guest", "b"}})["state"], "stopped");
    EXPECT_EQ(error({{"request", "poweroff"}, {"guest", "b"}}), "conflict");

    // decisions: every action above, newest first, with who and why.
    json d = result({{"request", "decisions"}, {"limit", 100}});
    ASSERT_GT(d["decisions"].size(), 10u);
    EXPECT_EQ(d["decisions"][0]["action"]["kind"], "poweroff");
    bool saw_reason = false, saw_refused = false;
    for (const auto& r : d["decisions"]) {
        if (r["reason"] == "test") saw_reason = true;
        if (r["outcome"] == "refused") saw_refused = true;
        EXPECT_NE(r["who"].get<std::string>().find("uid"), std::string::npos);
    }
    EXPECT_TRUE(saw_reason);
    EXPECT_TRUE(saw_refused);

    // events with `since`: the kept events replay first, filtered, in order.
    auto ec = ControlClient::connect(sock_);
    ASSERT_TRUE(ec);
    auto sub = ec->call({{"request", "events"}, {"since", 1}, {"types", {"state"}}, {"guest", "b"}});
    ASSERT_TRUE(sub && sub->contains("result")) << (sub ? sub->dump() : sub.error());
    EXPECT_EQ((*sub)["result"]["missed"], 0);
    uint64_t next = (*sub)["result"]["next_seq"];
    std::vector<std::string> to;
    uint64_t last = 0;
    while (auto line = ec->read_line(500ms)) {
        json e = json::parse(*line)["event"];
        EXPECT_EQ(e["type"], "state");
        EXPECT_EQ(e["guest"], "b");
        EXPECT_GT(e["seq"].get<uint64_t>(), last);
        EXPECT_LT(e["seq"].get<uint64_t>(), next);
        last = e["seq"];
        to.push_back(e["to"]);
    }
    // built, started, paused, resumed, stopped + built + started (restart), stopped (poweroff)
    EXPECT_EQ(to, (std::vector<std::string>{"starting", "running", "paused", "running", "stopped", "starting", "running",
                                            "stopped"}));
}

TEST_F(Host, SixteenClientsTenThousandRequestsAndSubscribers) {
    start(json::array({guest("a", "balloon", {{"balloon", true}}), guest("b", "balloon")}));
    ASSERT_FALSE(HasFailure());
    // Two subscribers to action events; each action request below is one
    // action event (applied or refused), so they must count exactly that.
    std::vector<ControlClient> subs;
    uint64_t first_seq = 0;
    for (int i = 0; i < 2; ++i) {
        auto c = ControlClient::connect(sock_);
        ASSERT_TRUE(c);
        auto r = c->call({{"request", "events"}, {"types", {"action"}}});
        ASSERT_TRUE(r && r->contains("result"));
        first_seq = (*r)["result"]["next_seq"];
        subs.push_back(std::move(*c));
    }
    constexpr int kClients = 16, kTotal = 10000;
    std::atomic<int> good{0}, wrong{0}, actions{0};
    std::mutex wrong_mutex;
    std::string wrong_examples;
    std::optional<PipeDrainer> drain(std::in_place, *proc_);
    std::vector<std::thread> threads;
    for (int t = 0; t < kClients; ++t)
        threads.emplace_back([&, t] {
            auto c = ControlClient::connect(sock_);
            if (!c) return void(wrong += kTotal / kClients);
            for (int i = 0; i < kTotal / kClients; ++i) {
                json req;
                switch ((t + i) % 5) {
                    case 0: req = {{"request", "list"}}; break;
                    case 1: req = {{"request", "vcpus"}, {"guest", "b"}}; break;
                    case 2: req = {{"request", "info"}}; break;
                    case 3: req = {{"request", "balloon"}, {"guest", "a"}, {"target", (i % 8) << 20}}; break;
                    case 4: req = {{"request", "pin"}, {"guest", "a"}, {"vcpu", 0}, {"cpus", {i % 2}}}; break;
                }
                bool is_action = (t + i) % 5 >= 3;
                auto r = c->call(req, 30s);
                if (r && r->contains("result")) {
                    ++good;
                } else {
                    std::lock_guard lock(wrong_mutex);
                    if (wrong++ < 3) wrong_examples += req.dump() + " -> " + (r ? r->dump() : r.error()) + "\n";
                }
                if (is_action) ++actions;
            }
        });
    // Meanwhile a client sends 1 MiB without a newline and is cut off.
    std::thread big([&] {
        auto c = ControlClient::connect(sock_);
        if (!c) return;
        std::string blob(1 << 20, 'x');
        ::send(c->fd(), blob.data(), blob.size(), MSG_NOSIGNAL);
        auto line = c->read_line(10s);
        EXPECT_TRUE(line && json::parse(*line)["error"]["code"] == "too_large") << (line ? *line : line.error());
    });
    std::vector<std::future<std::pair<int, bool>>> readers;
    for (auto& s : subs)
        readers.push_back(std::async(std::launch::async, [&s, first_seq, &threads, &actions] {
            (void)threads;
            int got = 0;
            uint64_t last = first_seq - 1;
            bool increasing = true;
            for (;;) {
                auto line = s.read_line(5s);  // the load has ended when 5 s pass without an event
                if (!line) break;
                auto j = json::parse(*line);
                uint64_t seq = j["event"]["seq"];
                if (seq <= last) increasing = false;
                last = seq;
                ++got;
            }
            (void)actions;
            return std::pair{got, increasing};
        }));
    for (auto& t : threads) t.join();
    big.join();
    EXPECT_EQ(good.load() + wrong.load(), kTotal);
    EXPECT_EQ(wrong.load(), 0) << wrong_examples;
    for (auto& r : readers) {
        auto [got, increasing] = r.get();
        EXPECT_EQ(got, actions.load()) << "a subscriber lost action events";
        EXPECT_TRUE(increasing);
    }
    drain.reset();
    // Still healthy, and it counted the load.
    json d = result({{"request", "decisions"}, {"limit", 1}});
    EXPECT_GE(d["next_seq"].get<uint64_t>(), uint64_t(actions.load()));
    EXPECT_TRUE(proc_->running());
}

TEST_F(Host, RunIsAHostOfOneGuestWithASocket) {
    proc_ = std::make_unique<VireoProcess>(std::vector<std::string>{
        "run", "--kernel", testguest_binary(), "--cmdline", "workload=hang", "--mem", "64M", "--console", "none", "--control", sock_});
    json list;
    for (int i = 0; i < 200 && !list.is_object(); ++i) {
        if (auto c = ControlClient::connect(sock_))
            if (auto r = c->call({{"request", "list"}}); r && r->contains("result")) list = (*r)["result"];
        if (!list.is_object()) std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(list.is_object()) << proc_->finish(5s).describe();
    ASSERT_EQ(list["guests"].size(), 1u);
    EXPECT_EQ(list["guests"][0]["name"], "vm0");
    EXPECT_EQ(result({{"request", "poweroff"}, {"guest", "vm0"}})["state"], "stopped");
    const RunResult& r = proc_->finish(10s);
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    EXPECT_NE(::access(sock_.c_str(), F_OK), 0) << "the socket file outlived vireo";
}

TEST_F(Host, BadConfigIsOneLineAndNothingStarts) {
    auto run_config = [&](const json& config) {
        std::ofstream(dir_ + "/bad.json") << config.dump();
        return run_vireo({"host", "--config", dir_ + "/bad.json"}, 20s);
    };
    auto expect_bad = [&](const RunResult& r, std::vector<std::string> mentions) {
        EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_BAD_INPUT) << r.describe();
        EXPECT_EQ(r.stderr_lines(), 1) << r.describe();
        EXPECT_TRUE(r.out.empty()) << "a guest started: " << r.describe();
        for (const auto& m : mentions) EXPECT_NE(r.err.find(m), std::string::npos) << "want '" << m << "': " << r.describe();
    };
    json ok = guest("ok", "hello", {{"console", "stdio"}});
    expect_bad(run_config({{"control", sock_}, {"guests", {ok, guest("web", "hello", {{"cpu", 2}})}}}), {"guest 'web'", "'cpu'"});
    expect_bad(run_config({{"control", sock_}, {"guests", {ok, guest("ok", "hello")}}}), {"guest 'ok'", "unique"});
    expect_bad(run_config({{"control", sock_}, {"guests", {ok, guest("k", "hello", {{"kernel", "/nonexistent"}})}}}),
               {"guest 'k'", "/nonexistent"});
    expect_bad(run_config({{"control", sock_}, {"guests", {ok, guest("p", "hello", {{"pin", {{"0", {999}}}}})}}}),
               {"guest 'p'", "999"});
    expect_bad(run_config({{"control", sock_}, {"metrics_listen", "localhost"}, {"guests", {ok}}}), {"--metrics-listen"});
    EXPECT_NE(::access(sock_.c_str(), F_OK), 0) << "a failed start left its socket behind";
}

}  // namespace
}  // namespace vireo::test
