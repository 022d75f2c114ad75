// virtio-balloon without KVM: page numbers are validated (outside RAM is
// refused and counted), inflated pages really leave the memfd (they read
// back as zeros), the target API drives config space and the config
// interrupt, stats are parsed by tag and the stats buffer is held and
// returned on the timer, reported free ranges are discarded.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "tests/unit/fakes.h"
#include "tests/unit/virtio_test_ring.h"
#include "vmm/devices/virtio/balloon/balloon.h"
#include "vmm/devices/virtio/balloon/balloon_target_sequence.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/io/io_thread.h"

namespace vireo::test {
namespace {

using namespace virtio;
using namespace std::chrono_literals;

constexpr uint64_t kRam = 8u << 20;
constexpr uint64_t kPfnArray = 0x80000;
constexpr uint64_t kPages = 0x400000;  // the pages the tests inflate

class VirtioBalloonTest : public ::testing::Test {
protected:
    VirtioBalloonTest() : mem(make_guest_memory(kRam)) {}
    ~VirtioBalloonTest() override {
        if (io) io->stop();
    }

    // queues: 0 inflate, 1 deflate, then stats and reporting if negotiated.
    void start(BalloonConfig cfg, uint64_t features, bool run_io = false) {
        auto t = IoThread::create("io/gtest");
        ASSERT_TRUE(t) << t.error();
        io = std::move(*t);
        auto b = std::make_unique<VirtioBalloon>(mem, cfg, *io);
        balloon = b.get();
        VirtioMmio::Options o;
        o.notify_eventfds = false;  // notifications run inline on this thread
        mmio = std::make_unique<VirtioMmio>(mem, std::move(b), irq, o);
        balloon->attach(*mmio);
        if (run_io) io->start();
        wr(reg::Status, status::Acknowledge | status::Driver);
        features |= bit(feature::Version1);
        wr(reg::DriverFeaturesSel, 0);
        wr(reg::DriverFeatures, uint32_t(features));
        wr(reg::DriverFeaturesSel, 1);
        wr(reg::DriverFeatures, uint32_t(features >> 32));
        wr(reg::Status, status::Acknowledge | status::Driver | status::FeaturesOk);
        ASSERT_TRUE(rd(reg::Status) & status::FeaturesOk);
        unsigned nq = balloon->queue_count(features);
        for (unsigned q = 0; q < nq; ++q) {
            rings.push_back(std::make_unique<TestRing>(mem, 0x1000 + 0x4000ull * q, 16));
            wr(reg::QueueSel, q);
            ASSERT_EQ(rd(reg::QueueNumMax), VirtioBalloon::kQueueSize);
            wr(reg::QueueNum, 16);
            wr(reg::QueueDescLow, uint32_t(rings[q]->addresses().desc));
            wr(reg::QueueDriverLow, uint32_t(rings[q]->addresses().driver));
            wr(reg::QueueDeviceLow, uint32_t(rings[q]->addresses().device));
            wr(reg::QueueReady, 1);
            ASSERT_EQ(rd(reg::QueueReady), 1u);
        }
        wr(reg::QueueSel, nq);
        EXPECT_EQ(rd(reg::QueueNumMax), 0u);
        wr(reg::Status, status::Acknowledge | status::Driver | status::FeaturesOk | status::DriverOk);
    }
    uint32_t rd(uint64_t off) { return uint32_t(read_n(*mmio, off, 4)); }
    void wr(uint64_t off, uint32_t v) { write_n(*mmio, off, v, 4); }

    // Sends `pfns` on queue `q` as one buffer.
    void send_pfns(unsigned q, const std::vector<uint32_t>& pfns) {
        mem.write(kPfnArray, {reinterpret_cast<const uint8_t*>(pfns.data()), pfns.size() * 4});
        rings[q]->set_desc(0, kPfnArray, uint32_t(pfns.size() * 4));
        rings[q]->make_available(0);
        wr(reg::QueueNotify, q);
    }
    void fill(uint64_t addr, uint64_t len, uint8_t v) { std::memset(mem.view(addr, len).data(), v, len); }
    bool all(uint64_t addr, uint64_t len, uint8_t v) {
        auto s = mem.view(addr, len);
        for (uint8_t b : s)
            if (b != v) return false;
        return true;
    }

    GuestMemory mem;
    FakeInterruptLine irq;
    std::unique_ptr<IoThread> io;
    VirtioBalloon* balloon = nullptr;
    std::unique_ptr<VirtioMmio> mmio;
    std::vector<std::unique_ptr<TestRing>> rings;
};

TEST_F(VirtioBalloonTest, InflateDiscardsPagesAndRefusesOutsideRam) {
    start({}, 0);
    fill(kPages, 4 * 4096, 0xab);
    uint32_t first = uint32_t(kPages >> 12);
    // Two contiguous pages, one apart, and three page numbers outside RAM.
    send_pfns(0, {first + 1, first, first + 3, uint32_t(kRam >> 12), 0xffffffffu, uint32_t((4ull << 30) >> 12)});
    EXPECT_EQ(rings[0]->used_idx(), 1);
    EXPECT_TRUE(all(kPages, 2 * 4096, 0));           // given back: reads as zeros
    EXPECT_TRUE(all(kPages + 2 * 4096, 4096, 0xab));  // not inflated: intact
    EXPECT_TRUE(all(kPages + 3 * 4096, 4096, 0));
    const auto& c = balloon->counters();
    EXPECT_EQ(c.inflated_pages.load(), 3u);
    EXPECT_EQ(c.balloon_pages.load(), 3u);
    EXPECT_EQ(c.refused_pfns.load(), 3u);
    EXPECT_EQ(c.discarded_bytes.load(), 3u * 4096);
    EXPECT_EQ(c.discard_failures.load(), 0u);
    send_pfns(1, {first, first + 1, uint32_t(kRam >> 12)});
    EXPECT_EQ(rings[1]->used_idx(), 1);
    EXPECT_EQ(c.deflated_pages.load(), 2u);
    EXPECT_EQ(c.balloon_pages.load(), 1u);
    EXPECT_EQ(c.refused_pfns.load(), 4u);
}

TEST_F(VirtioBalloonTest, PageNumbersSplitAcrossDescriptors) {
    start({}, 0);
    uint32_t pfns[2] = {uint32_t(kPages >> 12), uint32_t((kPages >> 12) + 1)};
    fill(kPages, 2 * 4096, 0x11);
    mem.write(kPfnArray, {reinterpret_cast<const uint8_t*>(pfns), 8});
    rings[0]->set_desc(0, kPfnArray, 3, kDescFNext, 1);  // 3 + 5 bytes
    rings[0]->set_desc(1, kPfnArray + 3, 5);
    rings[0]->make_available(0);
    wr(reg::QueueNotify, 0);
    EXPECT_EQ(balloon->counters().inflated_pages.load(), 2u);
    EXPECT_TRUE(all(kPages, 2 * 4096, 0));
}

TEST_F(VirtioBalloonTest, WritablePageListRefused) {
    start({}, 0);
    rings[0]->set_desc(0, kPfnArray, 8, kDescFWrite);
    rings[0]->make_available(0);
    wr(reg::QueueNotify, 0);
    EXPECT_EQ(rings[0]->used_idx(), 1);
    EXPECT_EQ(balloon->counters().bad_chains.load(), 1u);
    EXPECT_EQ(balloon->counters().inflated_pages.load(), 0u);
}

TEST_F(VirtioBalloonTest, TargetApiAndConfigInterrupt) {
    start({}, 0);
    EXPECT_FALSE(balloon->set_target_pages((kRam >> 12) + 1));  // more than RAM
    uint32_t gen = rd(reg::ConfigGeneration);
    ASSERT_TRUE(balloon->set_target_bytes(2u << 20));
    EXPECT_EQ(balloon->target_pages(), 512u);
    EXPECT_EQ(read_n(*mmio, reg::Config, 4), 512u);  // num_pages
    EXPECT_EQ(rd(reg::ConfigGeneration), gen + 1);
    EXPECT_TRUE(rd(reg::InterruptStatus) & kIsrConfigChange);
    EXPECT_TRUE(irq.changes() >= 1);
    // The driver reports what it holds in `actual`.
    EXPECT_FALSE(balloon->target_reached_at());
    write_n(*mmio, reg::Config + 4, 256, 4);
    EXPECT_FALSE(balloon->target_reached_at());  // half way is not there
    write_n(*mmio, reg::Config + 4, 512, 4);
    EXPECT_EQ(balloon->actual_pages(), 512u);
    EXPECT_TRUE(balloon->target_reached_at());
    // num_pages is the device's: a driver write there is ignored.
    write_n(*mmio, reg::Config, 7, 4);
    EXPECT_EQ(balloon->target_pages(), 512u);
}

TEST_F(VirtioBalloonTest, FeaturesAndQueueLayout) {
    BalloonConfig cfg;
    cfg.deflate_on_oom = true;
    cfg.reporting = true;
    start(cfg, bit(balloon::kFPageReporting));  // no stats: reporting is queue 2
    wr(reg::DeviceFeaturesSel, 0);
    uint32_t f = rd(reg::DeviceFeatures);
    EXPECT_TRUE(f & bit(balloon::kFDeflateOnOom));
    EXPECT_TRUE(f & bit(balloon::kFPageReporting));
    EXPECT_FALSE(f & bit(balloon::kFStatsVq));
    EXPECT_EQ(rings.size(), 3u);
    // Report a 64 KiB range plus an unaligned sliver: only whole pages go.
    fill(kPages, 16 * 4096, 0x77);
    rings[2]->set_desc(0, kPages, 16 * 4096, kDescFWrite | kDescFNext, 1);
    rings[2]->set_desc(1, kPages + 0x100, 0x800, kDescFWrite);
    rings[2]->make_available(0);
    wr(reg::QueueNotify, 2);
    EXPECT_EQ(rings[2]->used_idx(), 1);
    EXPECT_TRUE(all(kPages, 16 * 4096, 0));
    EXPECT_EQ(balloon->counters().reported_ranges.load(), 1u);
    EXPECT_EQ(balloon->counters().reported_bytes.load(), 16u * 4096);
}

TEST_F(VirtioBalloonTest, StatsAreParsedHeldAndRequested) {
    BalloonConfig cfg;
    cfg.stats_seconds = 1;
    start(cfg, bit(balloon::kFStatsVq), /*run_io=*/true);
    ASSERT_EQ(rings.size(), 3u);
    // { le16 tag; le64 val } packed
    auto entry = [](uint8_t* p, uint16_t tag, uint64_t val) {
        std::memcpy(p, &tag, 2);
        std::memcpy(p + 2, &val, 8);
    };
    uint8_t buf[40];
    entry(buf, balloon::kMemTotal, 8u << 20);
    entry(buf + 10, balloon::kMemFree, 3u << 20);
    entry(buf + 20, balloon::kMemAvailable, 4u << 20);
    entry(buf + 30, 99, 1);  // a tag from the future
    mem.write(kPfnArray, buf);
    rings[2]->set_desc(0, kPfnArray, sizeof buf);
    rings[2]->make_available(0);
    wr(reg::QueueNotify, 2);
    auto s = balloon->latest_stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->sequence, 1u);
    EXPECT_EQ(s->values[balloon::kMemTotal], 8u << 20);
    EXPECT_EQ(s->values[balloon::kMemFree], 3u << 20);
    EXPECT_EQ(s->values[balloon::kMemAvailable], 4u << 20);
    EXPECT_FALSE(s->values[balloon::kSwapIn]);
    EXPECT_EQ(balloon->counters().unknown_stat_tags.load(), 1u);
    // The device holds the buffer until it wants new numbers...
    EXPECT_EQ(rings[2]->used_idx(), 0);
    // ...and returns it on its timer (stats=1 s).
    auto end = std::chrono::steady_clock::now() + 5s;
    while (rings[2]->used_idx() == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(rings[2]->used_idx(), 1);
    // The refilled buffer is a second update.
    entry(buf + 10, balloon::kMemFree, 2u << 20);
    mem.write(kPfnArray, buf);
    rings[2]->make_available(0);
    wr(reg::QueueNotify, 2);
    s = balloon->latest_stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->sequence, 2u);
    EXPECT_EQ(s->values[balloon::kMemFree], 2u << 20);
}

TEST_F(VirtioBalloonTest, ResetForgetsGuestState) {
    start({}, 0);
    send_pfns(0, {uint32_t(kPages >> 12)});
    write_n(*mmio, reg::Config + 4, 1, 4);
    wr(reg::Status, 0);
    EXPECT_EQ(balloon->actual_pages(), 0u);
    EXPECT_EQ(balloon->counters().balloon_pages.load(), 0u);
}

// target-after: each step waits for the guest to reach the target before
// it, then its own delay; the first waits for the first target-at.
TEST(BalloonTargetSequence, StepsWaitForTheTargetBeforeThem) {
    using C = BalloonTargetSequence::Clock;
    BalloonTargetSequence seq({{0, 256, false}, {3, 0, true}, {1, 128, true}});
    C::time_point t0{};
    auto at = [&](double s) { return t0 + std::chrono::duration_cast<C::duration>(std::chrono::duration<double>(s)); };
    // Before target-at has run, the start state (0 pages, reached) does not count.
    EXPECT_FALSE(seq.due(at(10), 0, at(0)));
    // target-at set (1 change); the guest is still inflating.
    EXPECT_FALSE(seq.due(at(20), 1, std::nullopt));
    // Reached at 60 s: the first step is due 3 s later, not before.
    EXPECT_FALSE(seq.due(at(62.9), 1, at(60)));
    EXPECT_EQ(seq.due(at(63), 1, at(60)), std::optional<uint64_t>(0));
    EXPECT_FALSE(seq.done());
    // Until the caller's set counts as a change, the old "reached" is stale.
    EXPECT_FALSE(seq.due(at(70), 1, at(60)));
    EXPECT_FALSE(seq.due(at(70), 2, std::nullopt));
    EXPECT_EQ(seq.due(at(72), 2, at(71)), std::optional<uint64_t>(128));
    EXPECT_TRUE(seq.done());
    EXPECT_FALSE(seq.due(at(99), 3, at(80)));
}

TEST(BalloonTargetSequence, WithoutTargetAtTheStartStateCounts) {
    using C = BalloonTargetSequence::Clock;
    BalloonTargetSequence seq({{2, 64, true}});
    C::time_point t0{};
    EXPECT_FALSE(seq.due(t0 + std::chrono::seconds(1), 0, t0));
    EXPECT_EQ(seq.due(t0 + std::chrono::seconds(2), 0, t0), std::optional<uint64_t>(64));
    EXPECT_TRUE(BalloonTargetSequence({{1, 1, false}}).done());
}

}  // namespace
}  // namespace vireo::test
