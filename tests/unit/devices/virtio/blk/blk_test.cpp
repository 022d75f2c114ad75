// virtio-blk end to end without KVM: the transport, the device and a real
// I/O thread on io_uring over a temporary image, driven by a hand-written
// driver (tests/unit/virtio_test_ring.h) through the register window.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <tuple>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tests/unit/fakes.h"
#include "tests/unit/virtio_test_ring.h"
#include "vmm/devices/virtio/blk/blk.h"
#include "vmm/devices/virtio/blk/disk_image.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/io/io_thread.h"

namespace vireo::test {
namespace {

using namespace virtio;
using namespace std::chrono_literals;

constexpr uint64_t kRing = 0x1000;
constexpr uint64_t kHdr = 0x20000;     // 16 bytes per request
constexpr uint64_t kStatus = 0x30000;  // 1 byte per request
constexpr uint64_t kData = 0x100000;   // 4 KiB per request
constexpr uint64_t kDiskBytes = 4u << 20;

// A temporary image filled with a known pattern, removed at the end.
class TempImage {
public:
    explicit TempImage(uint64_t size) {
        char tmpl[] = "/tmp/vireo-blk-test-XXXXXX";
        int fd = ::mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp");
        path_ = tmpl;
        std::vector<uint8_t> buf(size);
        for (uint64_t i = 0; i < size; ++i) buf[i] = pattern(i);
        if (::write(fd, buf.data(), size) != ssize_t(size)) throw std::runtime_error("write");
        ::close(fd);
    }
    ~TempImage() { ::unlink(path_.c_str()); }
    static uint8_t pattern(uint64_t off) { return uint8_t((off * 31) ^ (off >> 9)); }
    const std::string& path() const { return path_; }
    std::vector<uint8_t> read(uint64_t off, size_t len) const {
        std::vector<uint8_t> out(len);
        int fd = ::open(path_.c_str(), O_RDONLY);
        ssize_t n = ::pread(fd, out.data(), len, off_t(off));
        ::close(fd);
        out.resize(n > 0 ? size_t(n) : 0);
        return out;
    }

private:
    std::string path_;
};

class VirtioBlkTest : public ::testing::Test {
protected:
    VirtioBlkTest() : mem(make_guest_memory(8u << 20)), image(kDiskBytes) {}
    ~VirtioBlkTest() override {
        if (io) io->stop();
    }

    // Builds image + device + transport + I/O thread, negotiates and sets
    // up queue 0 of `qsize` entries.
    void start(DiskConfig cfg = {}, uint16_t qsize = 128, bool event_idx = true) {
        cfg.path = image.path();
        auto disk = DiskImage::open(cfg);
        ASSERT_TRUE(disk) << disk.error();
        auto t = IoThread::create("io/gtest");
        ASSERT_TRUE(t) << t.error();
        io = std::move(*t);
        auto b = std::make_unique<VirtioBlk>("blk0", std::move(*disk), *io);
        blk = b.get();
        mmio = std::make_unique<VirtioMmio>(mem, std::move(b), irq);
        for (unsigned q = 0; q < mmio->max_queues(); ++q)
            io->watch(mmio->notify_fd(q), [m = mmio.get(), q] { m->handle_notify(q); });
        io->start();
        ring = std::make_unique<TestRing>(mem, kRing, qsize);
        wr(reg::Status, status::Acknowledge | status::Driver);
        uint64_t f = bit(feature::Version1) | bit(feature::IndirectDesc) | (event_idx ? bit(feature::EventIdx) : 0);
        wr(reg::DriverFeaturesSel, 0);
        wr(reg::DriverFeatures, uint32_t(f));
        wr(reg::DriverFeaturesSel, 1);
        wr(reg::DriverFeatures, uint32_t(f >> 32));
        wr(reg::Status, status::Acknowledge | status::Driver | status::FeaturesOk);
        ASSERT_TRUE(rd(reg::Status) & status::FeaturesOk);
        wr(reg::QueueSel, 0);
        wr(reg::QueueNum, qsize);
        wr(reg::QueueDescLow, uint32_t(ring->addresses().desc));
        wr(reg::QueueDriverLow, uint32_t(ring->addresses().driver));
        wr(reg::QueueDeviceLow, uint32_t(ring->addresses().device));
        wr(reg::QueueReady, 1);
        wr(reg::Status, status::Acknowledge | status::Driver | status::FeaturesOk | status::DriverOk);
    }
    uint32_t rd(uint64_t off) { return uint32_t(read_n(*mmio, off, 4)); }
    void wr(uint64_t off, uint32_t v) { write_n(*mmio, off, v, 4); }

    // Request `n` uses descriptors 3n, 3n+1, 3n+2: header, data, status.
    void queue_request(uint16_t n, uint32_t type, uint64_t sector, uint32_t len, uint64_t data_addr = 0) {
        uint8_t h[16] = {};
        std::memcpy(h, &type, 4);
        std::memcpy(h + 8, &sector, 8);
        mem.write(kHdr + 16ull * n, h);
        mem.view(kStatus + n, 1)[0] = 0xee;
        if (!data_addr) data_addr = kData + 4096ull * n;
        uint16_t d = uint16_t(3 * n);
        bool to_device = type == blk::kTypeOut;
        if (len) {
            ring->set_desc(d, kHdr + 16ull * n, 16, kDescFNext, uint16_t(d + 1));
            ring->set_desc(uint16_t(d + 1), data_addr, len, uint16_t(kDescFNext | (to_device ? 0 : kDescFWrite)),
                           uint16_t(d + 2));
        } else {
            ring->set_desc(d, kHdr + 16ull * n, 16, kDescFNext, uint16_t(d + 2));
        }
        ring->set_desc(uint16_t(d + 2), kStatus + n, 1, kDescFWrite);
        ring->make_available(d);
    }
    void notify() { wr(reg::QueueNotify, 0); }
    // Waits until the used index reaches `want`.
    bool wait_used(uint16_t want, std::chrono::milliseconds timeout = 5s) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (uint16_t(ring->used_idx() - want) < 0x8000) return true;
            std::this_thread::sleep_for(1ms);
        }
        return false;
    }
    uint8_t status_of(uint16_t n) { return mem.view(kStatus + n, 1)[0]; }

    GuestMemory mem;
    TempImage image;
    FakeInterruptLine irq;
    std::unique_ptr<IoThread> io;
    VirtioBlk* blk = nullptr;
    std::unique_ptr<VirtioMmio> mmio;
    std::unique_ptr<TestRing> ring;
};

TEST_F(VirtioBlkTest, ConfigSpace) {
    start();
    EXPECT_EQ(read_n(*mmio, reg::Config, 8), kDiskBytes / 512);
    EXPECT_EQ(read_n(*mmio, reg::Config + 12, 4), 254u);  // seg_max: queue-size 256 - 2
    EXPECT_EQ(read_n(*mmio, reg::Config + 20, 4), 512u);  // blk_size
    EXPECT_EQ(read_n(*mmio, reg::Config + 34, 2), 1u);    // num_queues
    EXPECT_EQ(rd(reg::DeviceId), kDeviceBlock);
}

TEST_F(VirtioBlkTest, ReadReturnsImageData) {
    start();
    queue_request(0, blk::kTypeIn, 8, 4096);
    notify();
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(status_of(0), blk::kStatusOk);
    EXPECT_EQ(ring->used(0), (std::pair<uint32_t, uint32_t>{0, 4097}));
    auto got = mem.view(kData, 4096);
    for (uint64_t i = 0; i < 4096; ++i) ASSERT_EQ(got[i], TempImage::pattern(8 * 512 + i)) << i;
    EXPECT_EQ(blk->counters().bytes_read.load(), 4096u);
}

TEST_F(VirtioBlkTest, WriteFlushReachesTheFile) {
    start();
    auto buf = mem.view(kData, 4096);
    for (size_t i = 0; i < 4096; ++i) buf[i] = uint8_t(i * 7);
    queue_request(0, blk::kTypeOut, 16, 4096);
    notify();
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(status_of(0), blk::kStatusOk);
    queue_request(1, blk::kTypeFlush, 0, 0);
    notify();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(status_of(1), blk::kStatusOk);
    auto file = image.read(16 * 512, 4096);
    ASSERT_EQ(file.size(), 4096u);
    for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(file[i], uint8_t(i * 7));
    EXPECT_EQ(blk->counters().flushes.load(), 1u);
}

TEST_F(VirtioBlkTest, ReadOnlyRefusesWritesFileUnchanged) {
    DiskConfig cfg;
    cfg.read_only = true;
    start(cfg);
    wr(reg::DeviceFeaturesSel, 0);
    EXPECT_TRUE(rd(reg::DeviceFeatures) & bit(blk::kFRo));
    std::memset(mem.view(kData, 4096).data(), 0x5a, 4096);
    queue_request(0, blk::kTypeOut, 0, 4096);
    queue_request(1, blk::kTypeIn, 0, 4096);
    notify();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(status_of(0), blk::kStatusIoErr);
    EXPECT_EQ(status_of(1), blk::kStatusOk);
    auto file = image.read(0, 4096);
    for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(file[i], TempImage::pattern(i));
    EXPECT_EQ(blk->counters().readonly_refused.load(), 1u);
}

TEST_F(VirtioBlkTest, OutOfRangeAndUnsupported) {
    start();
    queue_request(0, blk::kTypeIn, kDiskBytes / 512, 512);
    queue_request(1, 11 /* DISCARD, not offered */, 0, 0);
    notify();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(status_of(0), blk::kStatusIoErr);
    EXPECT_EQ(status_of(1), blk::kStatusUnsupp);
    EXPECT_EQ(blk->counters().bad_requests.load(), 2u);
}

TEST_F(VirtioBlkTest, GetIdGivesSerial) {
    DiskConfig cfg;
    cfg.serial = "vireo-serial-1";
    start(cfg);
    queue_request(0, blk::kTypeGetId, 0, 20);
    notify();
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(status_of(0), blk::kStatusOk);
    auto id = mem.view(kData, 20);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data()), 14), "vireo-serial-1");
    EXPECT_EQ(id[14], 0);
}

TEST_F(VirtioBlkTest, ManyInFlightWithoutNotifyPerRequest) {
    start({}, 128);
    for (uint16_t n = 0; n < 40; ++n) queue_request(n, blk::kTypeIn, 8ull * n, 4096);
    notify();
    ASSERT_TRUE(wait_used(40));
    for (uint16_t n = 0; n < 40; ++n) {
        ASSERT_EQ(status_of(n), blk::kStatusOk);
        auto got = mem.view(kData + 4096ull * n, 4096);
        ASSERT_EQ(got[100], TempImage::pattern(8ull * n * 512 + 100));
    }
    EXPECT_EQ(blk->counters().reads.load(), 40u);
}

TEST_F(VirtioBlkTest, InflightLimitIsCountedAndEverythingCompletes) {
    // 200 requests, each one indirect descriptor (header, then data and
    // status in one writable buffer); the device takes 128 at a time.
    start({}, 256);
    constexpr uint64_t kTables = 0x40000;
    for (uint16_t n = 0; n < 200; ++n) {
        uint8_t h[16] = {};
        uint64_t sector = n;
        std::memcpy(h + 8, &sector, 8);
        mem.write(kHdr + 16ull * n, h);
        uint64_t table = kTables + 32ull * n;
        ring->write_desc(table, 0, kHdr + 16ull * n, 16, kDescFNext, 1);
        ring->write_desc(table, 1, kData + 1024ull * n, 513, kDescFWrite);
        ring->set_desc(n, table, 32, kDescFIndirect);
        ring->make_available(n);
    }
    notify();
    ASSERT_TRUE(wait_used(200));
    for (uint16_t n = 0; n < 200; ++n) {
        ASSERT_EQ(mem.view(kData + 1024ull * n + 512, 1)[0], blk::kStatusOk) << n;
        ASSERT_EQ(mem.view(kData + 1024ull * n + 7, 1)[0], TempImage::pattern(512ull * n + 7)) << n;
    }
    EXPECT_GE(blk->counters().inflight_limit_hits.load(), 1u);
    EXPECT_LE(blk->counters().max_inflight_seen.load(), VirtioBlk::kMaxInflight);
}

TEST_F(VirtioBlkTest, DirectUnalignedBufferIsBounced) {
    DiskConfig cfg;
    cfg.direct = true;
    start(cfg);
    queue_request(0, blk::kTypeIn, 0, 1024, kData + 8);  // 8-byte aligned only
    queue_request(1, blk::kTypeIn, 8, 4096);             // aligned: direct
    notify();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(status_of(0), blk::kStatusOk);
    EXPECT_EQ(status_of(1), blk::kStatusOk);
    auto got = mem.view(kData + 8, 1024);
    for (uint64_t i = 0; i < 1024; ++i) ASSERT_EQ(got[i], TempImage::pattern(i));
    EXPECT_EQ(blk->counters().bounced.load(), 1u);
}

TEST_F(VirtioBlkTest, HostErrorBecomesIoErr) {
    start();
    // The image shrinks under the device: a read inside the advertised
    // capacity hits the end of the file.
    ASSERT_EQ(::truncate(image.path().c_str(), 4096), 0);
    queue_request(0, blk::kTypeIn, 64, 4096);
    notify();
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(status_of(0), blk::kStatusIoErr);
    EXPECT_EQ(blk->counters().io_errors.load(), 1u);
}

TEST_F(VirtioBlkTest, MalformedChainFailsOnlyThatRequest) {
    start();
    ring->set_desc(0, (8u << 20) - 8, 16, kDescFNext, 1);  // header runs off RAM
    ring->set_desc(1, kStatus, 1, kDescFWrite);
    ring->make_available(0);
    queue_request(1, blk::kTypeIn, 0, 512);
    notify();
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(ring->used(0), (std::pair<uint32_t, uint32_t>{0, 0}));
    EXPECT_EQ(status_of(1), blk::kStatusOk);
    EXPECT_EQ(blk->counters().bad_chains.load(), 1u);
    EXPECT_FALSE(rd(reg::Status) & status::DeviceNeedsReset);
}

TEST_F(VirtioBlkTest, RingErrorNeedsReset) {
    start();
    ring->set_avail_idx(1000);
    notify();
    auto end = std::chrono::steady_clock::now() + 5s;
    while (!(rd(reg::Status) & status::DeviceNeedsReset) && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(rd(reg::Status) & status::DeviceNeedsReset);
}

TEST_F(VirtioBlkTest, ResetAndRestart) {
    start();
    queue_request(0, blk::kTypeIn, 0, 4096);
    notify();
    ASSERT_TRUE(wait_used(1));
    wr(reg::Status, 0);
    EXPECT_EQ(rd(reg::Status), 0u);
    EXPECT_EQ(blk->inflight(), 0u);
}

// A driver that notifies only when the device asked for it (EVENT_IDX
// avail_event, or !NO_NOTIFY without it), as Linux and the test guest do:
// whatever the device's polling policy, no request may be left waiting for
// a notification that the device told the driver not to send.
class VirtioBlkSuppression : public VirtioBlkTest, public ::testing::WithParamInterface<std::tuple<unsigned, bool>> {
protected:
    uint16_t kicked = 0;
    void kick_if_needed() {
        uint16_t now = uint16_t(kicked + pending), old = kicked;
        std::atomic_thread_fence(std::memory_order_seq_cst);
        bool need = std::get<1>(GetParam()) ? need_event(ring->avail_event(), now, old)
                                            : !(ring->used_flags() & kUsedFNoNotify);
        if (need) {
            notify();
            ++notifies;
        }
        kicked = now;
        pending = 0;
    }
    uint16_t pending = 0;
    unsigned notifies = 0;
};

TEST_P(VirtioBlkSuppression, NoRequestWaitsForever) {
    DiskConfig cfg;
    cfg.poll_us = std::get<0>(GetParam());
    start(cfg, 128, std::get<1>(GetParam()));
    uint16_t done = 0;
    // Bursts of requests separated by pauses longer and shorter than the
    // poll window, refilled as they complete like a polling guest.
    for (int round = 0; round < 12; ++round) {
        unsigned burst = 1 + round % 5;
        for (unsigned k = 0; k < burst; ++k) {
            uint16_t n = uint16_t((done + k) % 40);
            queue_request(n, blk::kTypeIn, n, 512);
            ++pending;
        }
        kick_if_needed();
        ASSERT_TRUE(wait_used(uint16_t(done + burst), 3s)) << "round " << round << ": stuck at " << ring->used_idx();
        done = uint16_t(done + burst);
        std::this_thread::sleep_for(std::chrono::microseconds(round % 2 ? 100 : 3000));
    }
    EXPECT_GE(notifies, 1u);
}

INSTANTIATE_TEST_SUITE_P(PollAndEventIdx, VirtioBlkSuppression,
                         ::testing::Combine(::testing::Values(0u, 500u), ::testing::Bool()));

TEST_F(VirtioBlkTest, WithoutEventIdx) {
    start({}, 128, /*event_idx=*/false);
    queue_request(0, blk::kTypeIn, 0, 4096);
    notify();
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(status_of(0), blk::kStatusOk);
    EXPECT_GE(irq.changes(), 2u);  // NO_INTERRUPT not set: an interrupt came
}

// ---------------------------------------------------------------- disk images

TEST(DiskImage, Errors) {
    DiskConfig c;
    c.path = "/nonexistent/vireo.img";
    auto r = DiskImage::open(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("No such file"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("--disk /nonexistent/vireo.img"), std::string::npos) << r.error();
    c.path = "/tmp";
    r = DiskImage::open(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("directory"), std::string::npos) << r.error();
    TempImage empty(0);
    c.path = empty.path();
    r = DiskImage::open(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("empty"), std::string::npos) << r.error();
    c.path = "/dev/null";
    r = DiskImage::open(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("not a regular file"), std::string::npos) << r.error();
}

TEST(DiskImage, WritableImageIsExclusive) {
    TempImage img(1 << 20);
    DiskConfig c;
    c.path = img.path();
    auto a = DiskImage::open(c);
    ASSERT_TRUE(a) << a.error();
    EXPECT_EQ(a->sectors(), 2048u);
    EXPECT_FALSE(a->serial().empty());
    EXPECT_LE(a->serial().size(), 20u);
    auto b = DiskImage::open(c);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().find("in use"), std::string::npos) << b.error();
    DiskConfig ro = c;
    ro.read_only = true;
    EXPECT_FALSE(DiskImage::open(ro));  // no reader next to a writer
}

TEST(DiskImage, ReadOnlyImagesShare) {
    TempImage img(1 << 20);
    DiskConfig c;
    c.path = img.path();
    c.read_only = true;
    auto a = DiskImage::open(c);
    auto b = DiskImage::open(c);
    EXPECT_TRUE(a && b);
    DiskConfig w = c;
    w.read_only = false;
    EXPECT_FALSE(DiskImage::open(w));  // no writer next to readers
}

TEST(DiskImage, OddSizeRoundsDown) {
    TempImage img(1000);
    DiskConfig c;
    c.path = img.path();
    auto a = DiskImage::open(c);
    ASSERT_TRUE(a) << a.error();
    EXPECT_EQ(a->sectors(), 1u);
}

}  // namespace
}  // namespace vireo::test
