// A `vireo host` process for the /dev/kvm integration tests: writes a
// config, starts vireo, talks to its control socket and vireoctl.
#pragma once

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/kvm/vireo_process.h"
#include "vmm/control/client.h"

namespace vireo::test {

using json = nlohmann::json;
using control::ControlClient;
using namespace std::chrono_literals;

inline std::string slurp_cmd(const std::string& cmd, int* status = nullptr) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

inline std::string cpus_allowed_list(pid_t pid, pid_t tid) {
    std::ifstream f(fmt::format("/proc/{}/task/{}/status", pid, tid));
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("Cpus_allowed_list:", 0) == 0) {
            std::string v = line.substr(18);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        }
    return "?";
}

inline uint64_t thread_cpu_ticks(pid_t pid, pid_t tid) {
    std::ifstream f(fmt::format("/proc/{}/task/{}/stat", pid, tid));
    std::string s((std::istreambuf_iterator<char>(f)), {});
    std::istringstream in(s.substr(s.rfind(')') + 2));
    std::string tok;
    uint64_t utime = 0, stime = 0;
    for (int field = 3; in >> tok; ++field) {
        if (field == 14) utime = std::stoull(tok);
        if (field == 15) stime = std::stoull(tok);
    }
    return utime + stime;
}

// VireoProcess reads vireo's stdout/stderr only inside wait()/finish(); a
// test that keeps vireo busy (and logging) for long must keep reading, or
// vireo blocks writing its log to a full pipe. Not thread-safe with other
// uses of the process while it runs: the test only talks to the socket.
class PipeDrainer {
public:
    explicit PipeDrainer(VireoProcess& p) : thread_([this, &p] {
        while (!stop_.load() && !p.wait(std::chrono::milliseconds(20))) {
        }
    }) {}
    ~PipeDrainer() {
        stop_ = true;
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

class HostFixture : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& why : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()), missing_file_reason(testguest_binary())})
            if (!why.empty()) GTEST_SKIP() << why;
        char tmpl[] = "/tmp/vireo-host-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        sock_ = dir_ + "/control.sock";
    }
    void TearDown() override {
        if (proc_ && proc_->running()) {
            proc_->send_signal(SIGTERM);
            proc_->finish(10s);
        }
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    static json guest(const std::string& name, const std::string& workload, json extra = json::object()) {
        json g{{"name", name}, {"kernel", testguest_binary()}, {"cmdline", "workload=" + workload}, {"mem", "64M"}, {"probes", "off"}};
        for (auto it = extra.begin(); it != extra.end(); ++it) g[it.key()] = it.value();
        return g;
    }

    // Writes the config, starts `vireo host`, waits for its socket.
    void start(json guests) {
        json config{{"control", sock_}, {"metrics_listen", "127.0.0.1:0"}, {"guests", guests}};
        std::ofstream(dir_ + "/host.json") << config.dump(2);
        proc_ = std::make_unique<VireoProcess>(std::vector<std::string>{"host", "--config", dir_ + "/host.json"});
        for (int i = 0; i < 200; ++i) {
            if (auto c = ControlClient::connect(sock_)) {
                auto r = c->call({{"request", "info"}});
                if (r && r->contains("result")) {
                    info_ = (*r)["result"];
                    return;
                }
            }
            if (proc_->wait(50ms)) break;  // it exited: fail below with its output
        }
        FAIL() << "vireo host did not come up: " << proc_->finish(5s).describe();
    }

    json call(json request) {
        auto c = ControlClient::connect(sock_);
        EXPECT_TRUE(c) << (c ? "" : c.error());
        if (!c) return json();
        auto r = c->call(std::move(request));
        EXPECT_TRUE(r) << (r ? "" : r.error());
        return r ? *r : json();
    }
    json result(json request) {
        json r = call(request);
        EXPECT_TRUE(r.contains("result")) << request.dump() << " -> " << r.dump();
        return r.contains("result") ? r["result"] : json();
    }
    // The error code of a request that must fail.
    std::string error(json request) {
        json r = call(request);
        EXPECT_TRUE(r.contains("error")) << request.dump() << " -> " << r.dump();
        if (!r.contains("error")) return "";
        EXPECT_FALSE(r["error"]["message"].get<std::string>().empty());
        return r["error"]["code"].get<std::string>();
    }
    std::string ctl(const std::string& args, int* status = nullptr) {
        return slurp_cmd(fmt::format("{}/vireoctl --control {} {} 2>&1", build_dir(), sock_, args), status);
    }

    // What a bad request must not change: states, pinning, balloon targets,
    // thread affinities, the controller's settings.
    json observable_state() {
        json s;
        // Each result held in a local: a range-for over result(...)["x"]
        // would iterate a temporary destroyed before the loop body runs.
        json list = result({{"request", "list"}});
        for (const auto& g : list["guests"]) {
            std::string name = g["name"];
            s[name]["state"] = g["state"];
            s[name]["balloon"] = g["balloon"];
            s[name]["starts"] = g["starts"];
            json vcpus = result({{"request", "vcpus"}, {"guest", name}});
            for (const auto& v : vcpus["vcpus"]) {
                s[name]["pinned"].push_back(v["pinned"]);
                s[name]["allowed"].push_back(v["cpus_allowed"]);
                s[name]["tid"].push_back(v["tid"]);
            }
        }
        json c = result({{"request", "controller"}});
        c.erase("applied");
        s["controller"] = c;
        return s;
    }

    pid_t vcpu_tid(const std::string& guest, unsigned vcpu = 0) {
        json v = result({{"request", "vcpus"}, {"guest", guest}})["vcpus"][vcpu];
        EXPECT_TRUE(v["tid"].is_number()) << "a running guest's vCPU has no thread id: " << v.dump();
        return v["tid"].is_number() ? v["tid"].get<pid_t>() : 0;
    }

    std::string dir_, sock_;
    std::unique_ptr<VireoProcess> proc_;
    json info_;
};

}  // namespace vireo::test
