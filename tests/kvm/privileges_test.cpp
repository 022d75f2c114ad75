// Least privilege on /dev/kvm: `vireo run --user nobody` started as root opens
// what it needs, then runs the guest as nobody with no capabilities, and a
// restart still works after the drop (the kept /dev/kvm fd; the probes
// loaded as root are reused by the restart).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"
#include "vmm/control/client.h"
#include "vmm/security/privileges.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Privileges : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()),
                                   missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
        if (::geteuid() != 0) GTEST_SKIP() << "needs root: vireo must start as root to drop to --user nobody";
        auto nobody = security::resolve_user("nobody");
        if (!nobody) GTEST_SKIP() << "no user nobody: " << nobody.error();
        uid_ = nobody->uid;
        gid_ = nobody->gid;
        char tmpl[] = "/tmp/vireo-priv-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        // Root's alone: opened before the drop, so nobody never needs it.
        disk_ = dir_ + "/disk.img";
        std::ofstream(disk_).close();
        fs::resize_file(disk_, 4 << 20);
        ::chmod(disk_.c_str(), 0600);
        ::chmod(dir_.c_str(), 0755);  // the kernel is reopened by path on a restart
        kernel_ = dir_ + "/testguest";
        fs::copy_file(testguest_binary(), kernel_);
        ::chmod(kernel_.c_str(), 0644);
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Waits until every thread of `pid` runs as nobody and a vCPU thread exists.
    bool wait_dropped(VireoProcess& p) {
        fs::path tasks = fs::path("/proc") / std::to_string(p.pid()) / "task";
        std::string want = std::to_string(uid_);
        for (int i = 0; i < 200; ++i) {
            bool vcpu = false, all = true;
            std::error_code ec;
            for (const auto& t : fs::directory_iterator(tasks, ec)) {
                std::ifstream c(t.path() / "comm");
                std::string comm;
                std::getline(c, comm);
                vcpu |= comm.starts_with("CPU 0");
                all &= status_of((t.path() / "status").string())["Uid"].starts_with(want + "\t");
            }
            if (vcpu && all) return true;
            if (p.wait(50ms)) return false;
        }
        return false;
    }

    uid_t uid_ = 0;
    gid_t gid_ = 0;
    std::string dir_, disk_, kernel_;
};

TEST_F(Privileges, UserNobodyRunsTheGuestWithNoCapabilities) {
    VireoProcess p({"run", "--kernel", kernel_, "--cmdline", "workload=cpu:3000", "--mem", "64M", "--disk", disk_, "--control",
                    dir_ + "/c.sock", "--metrics-listen", "127.0.0.1:0", "--user", "nobody"});
    ASSERT_TRUE(wait_dropped(p)) << p.finish(1s).describe();
    for (const auto& t : fs::directory_iterator(fs::path("/proc") / std::to_string(p.pid()) / "task")) {
        auto st = status_of((t.path() / "status").string());
        std::string u = std::to_string(uid_), g = std::to_string(gid_);
        EXPECT_EQ(st["Uid"], u + "\t" + u + "\t" + u + "\t" + u) << t.path();
        EXPECT_EQ(st["Gid"], g + "\t" + g + "\t" + g + "\t" + g) << t.path();
        for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
            EXPECT_EQ(st[cap], "0000000000000000") << cap << " of " << t.path();
        EXPECT_EQ(st["NoNewPrivs"], "1");
    }
    // The control socket still answers root.
    auto c = control::ControlClient::connect(dir_ + "/c.sock");
    ASSERT_TRUE(c.has_value()) << c.error();
    auto info = c->call({{"request", "list"}});
    ASSERT_TRUE(info.has_value()) << info.error();
    EXPECT_TRUE(info->contains("result")) << info->dump();
    auto r = p.finish(30s);
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    EXPECT_NE(r.err.find("running as user nobody"), std::string::npos) << r.describe();
}

TEST_F(Privileges, RestartAfterTheDropUsesTheKeptKvmFd) {
    VireoProcess p({"run", "--kernel", kernel_, "--cmdline", "workload=hang", "--mem", "64M", "--console", "none",
                    "--control", dir_ + "/c.sock", "--user", "nobody"});
    ASSERT_TRUE(wait_dropped(p)) << p.finish(1s).describe();
    auto c = control::ControlClient::connect(dir_ + "/c.sock");
    ASSERT_TRUE(c.has_value()) << c.error();
    auto res = c->call({{"request", "restart"}, {"guest", "vm0"}});
    ASSERT_TRUE(res.has_value()) << res.error();
    EXPECT_TRUE(res->contains("result")) << res->dump();
    auto list = c->call({{"request", "list"}});
    ASSERT_TRUE(list.has_value()) << list.error();
    EXPECT_EQ((*list)["result"]["guests"][0]["state"], "running") << list->dump();
    p.send_signal(SIGTERM);
    auto r = p.finish(10s);
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_OK) << r.describe();
    EXPECT_NE(r.err.find("restart 1 took"), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find("permission denied"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace vireo::test
