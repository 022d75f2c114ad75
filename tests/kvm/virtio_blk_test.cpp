// virtio-blk on this host's /dev/kvm with the ring-3 test guest: data the
// guest wrote and flushed is in the image after vireo exits; a read-only
// disk fails the guest's writes with IOERR and stays unchanged; a writable
// image is locked against a second vireo (exit 2, one line, before any
// guest starts); every bad --disk value is one line and exit 2.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvm/vireo_process.h"
#include "vireo/exit_status.h"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

// A scratch image in /tmp, removed at the end.
class ScratchImage {
public:
    ScratchImage(uint64_t size, uint8_t fill) {
        char tmpl[] = "/tmp/vireo-kvm-disk-XXXXXX";
        int fd = ::mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        path_ = tmpl;
        std::vector<uint8_t> block(1 << 20);
        for (uint64_t off = 0; off < size; off += block.size()) {
            for (size_t i = 0; i < block.size(); ++i) block[i] = fill == 0xff ? uint8_t((off + i) * 131 >> 3) : fill;
            size_t n = std::min<uint64_t>(block.size(), size - off);
            if (::write(fd, block.data(), n) != ssize_t(n)) throw std::runtime_error("write failed");
        }
        ::close(fd);
    }
    ~ScratchImage() { ::unlink(path_.c_str()); }
    const std::string& path() const { return path_; }
    std::vector<uint8_t> contents() const {
        std::ifstream f(path_, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    }

private:
    std::string path_;
};

class VirtioBlkKvm : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& reason : {kvm_unavailable_reason(), missing_file_reason(vireo_binary()),
                                   missing_file_reason(testguest_binary())})
            if (!reason.empty()) GTEST_SKIP() << reason;
    }
    static std::vector<std::string> args(const std::string& cmdline, std::vector<std::string> extra) {
        std::vector<std::string> a{"run", "--kernel", testguest_binary(), "--mem", "64M", "--cmdline", cmdline};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

#define EXPECT_EXIT_STATUS(r, want)                                                                       \
    do {                                                                                                  \
        EXPECT_FALSE((r).timed_out) << (r).describe();                                                    \
        EXPECT_TRUE((r).exited && (r).status == (want)) << "want exit " << (want) << ", got " << (r).describe(); \
    } while (0)
#define EXPECT_OUTPUT(r, text) \
    EXPECT_NE((r).out.find(text), std::string::npos) << "missing \"" << (text) << "\"; got " << (r).describe()

// The test guest's pattern (tests/guests/testguest/virtio_blk.c).
uint64_t pattern(uint64_t off, uint64_t seed) { return (off * 0x9e3779b97f4a7c15ull) ^ seed; }

void expect_pattern(const std::vector<uint8_t>& img, uint64_t start_sector, uint64_t sectors, uint64_t seed) {
    ASSERT_GE(img.size(), (start_sector + sectors) * 512);
    for (uint64_t off = start_sector * 512; off < (start_sector + sectors) * 512; off += 8) {
        uint64_t got;
        std::memcpy(&got, img.data() + off, 8);
        ASSERT_EQ(got, pattern(off, seed)) << "at byte " << off;
    }
}

TEST_F(VirtioBlkKvm, BlkRwDataIsInTheImageAfterExit) {
    ScratchImage img(8 << 20, 0);
    auto r = run_vireo(args("workload=blk-rw sectors=4096 start=100 seed=0x1234", {"--disk", img.path(), "--stats"}), 60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "blk-rw: wrote, flushed and verified 4096 sectors at 100");
    EXPECT_OUTPUT(r, "blk: serial '");
    // Notifications went through ioeventfd, not through vCPU exits to vireo.
    EXPECT_NE(r.err.find("(via vCPU exits 0)"), std::string::npos) << r.describe();
    auto data = img.contents();
    expect_pattern(data, 100, 4096, 0x1234);
    // Nothing outside the range was touched.
    for (uint64_t off = 0; off < 100 * 512; ++off) ASSERT_EQ(data[off], 0) << off;
    for (uint64_t off = (100 + 4096) * 512; off < data.size(); ++off) ASSERT_EQ(data[off], 0) << off;
}

TEST_F(VirtioBlkKvm, BlkRwDirectMultiQueueIndirect) {
    ScratchImage img(4 << 20, 0);
    auto r = run_vireo(args("workload=blk-rw sectors=2048 indirect=1 qd=16 chunk=16",
                            {"--disk", img.path() + ",direct,queues=4,queue-size=64"}),
                       60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "4 queue(s)");
    EXPECT_OUTPUT(r, "verified 2048 sectors");
    expect_pattern(img.contents(), 0, 2048, 0x5eed);
}

TEST_F(VirtioBlkKvm, ReadOnlyDiskRefusesWritesAndStaysUnchanged) {
    ScratchImage img(1 << 20, 0xff);
    auto before = img.contents();
    auto r = run_vireo(args("workload=blk-ro", {"--disk", img.path() + ",ro"}), 60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "blk-ro: write refused with IOERR, read ok");
    EXPECT_OUTPUT(r, "read-only");
    EXPECT_TRUE(img.contents() == before) << "a read-only image changed";
    // And blk-rw on the same read-only disk fails (test-exit 1).
    r = run_vireo(args("workload=blk-rw sectors=8", {"--disk", img.path() + ",ro"}), 60s);
    EXPECT_EXIT_STATUS(r, 1);
    EXPECT_OUTPUT(r, "failed with status 1");
    EXPECT_TRUE(img.contents() == before) << "a read-only image changed";
}

// True once another process holds a lock on `path` that conflicts with ours.
bool locked_by_someone(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // also drops our lock if we got one
    return locked;
}

TEST_F(VirtioBlkKvm, SecondVireoOnTheSameWritableDiskExits2) {
    ScratchImage img(1 << 20, 0);
    VireoProcess first(args("workload=hang", {"--disk", img.path(), "--console", "none"}));
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!locked_by_someone(img.path()) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(locked_by_someone(img.path())) << "the first vireo never locked the image";
    auto second = run_vireo(args("workload=hello", {"--disk", img.path()}), 20s);
    EXPECT_EXIT_STATUS(second, VIREO_EXIT_BAD_INPUT);
    EXPECT_EQ(second.stderr_lines(), 1) << second.describe();
    EXPECT_NE(second.err.find("in use by another process"), std::string::npos) << second.describe();
    EXPECT_NE(second.err.find(img.path()), std::string::npos) << second.describe();
    EXPECT_TRUE(second.out.empty()) << "no guest may start: " << second.describe();
    // Read-only next to a writer is refused too.
    auto ro = run_vireo(args("workload=hello", {"--disk", img.path() + ",ro"}), 20s);
    EXPECT_EXIT_STATUS(ro, VIREO_EXIT_BAD_INPUT);
    first.send_signal(SIGTERM);
    const auto& r = first.finish(20s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    // Once the first is gone, the disk is free again.
    auto third = run_vireo(args("workload=blk-rw sectors=8", {"--disk", img.path()}), 60s);
    EXPECT_EXIT_STATUS(third, VIREO_EXIT_OK);
}

// Waits until the process's log shows `text` (true) or it exits/times out.
bool wait_for_log(VireoProcess& p, const std::string& text, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (p.result().err.find(text) != std::string::npos) return true;
        if (p.wait(50ms)) return p.result().err.find(text) != std::string::npos;
    }
    return false;
}

TEST_F(VirtioBlkKvm, ReadOnlyDisksCanBeShared) {
    ScratchImage img(1 << 20, 0);
    VireoProcess first(args("workload=hang", {"--disk", img.path() + ",ro", "--console", "none"}));
    ASSERT_TRUE(wait_for_log(first, "guest vm0:", 10s)) << first.result().describe();
    auto second = run_vireo(args("workload=blk-ro", {"--disk", img.path() + ",ro"}), 60s);
    EXPECT_EXIT_STATUS(second, VIREO_EXIT_OK);
    first.send_signal(SIGTERM);
    first.finish(20s);
}

TEST_F(VirtioBlkKvm, RandomReadWorkloadRuns) {
    ScratchImage img(16 << 20, 0xff);
    auto r = run_vireo(args("workload=blk-randread:1 qd=8", {"--disk", img.path() + ",direct"}), 60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "iops=");
    r = run_vireo(args("workload=blk-seqread:1 qd=2", {"--disk", img.path()}), 60s);
    EXPECT_EXIT_STATUS(r, VIREO_EXIT_OK);
    EXPECT_OUTPUT(r, "mibps=");
}

TEST_F(VirtioBlkKvm, NoDiskIsAGuestError) {
    auto r = run_vireo(args("workload=blk-rw", {}), 30s);
    EXPECT_EXIT_STATUS(r, 1);
    EXPECT_OUTPUT(r, "no virtio-blk device");
}

// ---------------------------------------------------------------- bad input

void expect_bad_input(const RunResult& r, const std::string& must_mention) {
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_TRUE(r.exited && r.status == VIREO_EXIT_BAD_INPUT) << "want exit 2, got " << r.describe();
    EXPECT_EQ(r.stderr_lines(), 1) << r.describe();
    EXPECT_TRUE(r.out.empty()) << r.describe();
    EXPECT_NE(r.err.find(must_mention), std::string::npos) << "should mention \"" << must_mention << "\": " << r.describe();
}

TEST_F(VirtioBlkKvm, BadDiskAndBalloonValues) {
    ScratchImage empty(0, 0);
    ScratchImage ok(1 << 20, 0);
    struct Case {
        std::vector<std::string> extra;
        std::string mention;
    } cases[] = {
        {{"--disk", "/nonexistent/x.img"}, "No such file or directory"},
        {{"--disk", "/tmp"}, "is a directory"},
        {{"--disk", empty.path()}, "is empty"},
        {{"--disk", ok.path() + ",fast"}, "unknown option 'fast'"},
        {{"--disk", ok.path() + ",queues=zero"}, "queues"},
        {{"--disk", ok.path() + ",queue-size=100"}, "power of two"},
        {{"--disk", "/dev/null"}, "not a regular file"},
        {{"--balloon", "stats=soon"}, "--balloon"},
        {{"--balloon", "shrink"}, "unknown option 'shrink'"},
        {{"--disk", ok.path(), "--disk", ok.path()}, "in use"},  // the same writable image twice
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.mention);
        expect_bad_input(run_vireo(args("workload=hello", c.extra), 20s), c.mention);
    }
}

}  // namespace
}  // namespace vireo::test
