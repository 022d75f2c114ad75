// The split-virtqueue walker on hand-built rings: well-formed chains come
// out as validated segments; every malformed case is refused with the
// right error, for that chain only (chain errors) or for the whole queue
// (ring errors), and nothing ever reads outside guest RAM.
#include <gtest/gtest.h>

#include "tests/unit/virtio_test_ring.h"
#include "vmm/devices/virtio/virtio_abi.h"
#include "vmm/devices/virtio/virtqueue.h"

namespace vireo::test {
namespace {

using namespace virtio;

constexpr uint64_t kRam = 1u << 20;      // 1 MiB of guest RAM at 0
constexpr uint64_t kRing = 0x1000;
constexpr uint64_t kBuf = 0x40000;       // data buffers
constexpr uint64_t kTable = 0x80000;     // indirect tables

class VirtQueueTest : public ::testing::Test {
protected:
    VirtQueueTest() : mem(make_guest_memory(kRam)), ring(mem, kRing, 8), vq(mem, 256) {}
    void activate(bool event_idx = false, bool indirect = true) {
        auto r = vq.activate(ring.addresses(), ring.size(), event_idx, indirect);
        ASSERT_TRUE(r) << r.error();
    }
    // Pops one chain that must be refused with `want`; returns its head.
    uint16_t expect_chain_error(QueueError want) {
        auto r = vq.pop(chain);
        EXPECT_FALSE(r.has_value());
        if (r) return 0xffff;
        EXPECT_EQ(r.error().error, want) << to_string(r.error().error);
        return r.error().head;
    }
    GuestMemory mem;
    TestRing ring;
    VirtQueue vq;
    DescChain chain;
};

TEST_F(VirtQueueTest, EmptyRingGivesNothing) {
    activate();
    auto r = vq.pop(chain);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    EXPECT_EQ(vq.pending(), 0);
}

TEST_F(VirtQueueTest, NotReadyQueueRefuses) {
    auto r = vq.pop(chain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, QueueError::NotReady);
}

TEST_F(VirtQueueTest, ReadableThenWritableChain) {
    activate();
    ring.set_desc(3, kBuf, 16, kDescFNext, 5);
    ring.set_desc(5, kBuf + 0x1000, 4096, kDescFNext | kDescFWrite, 1);
    ring.set_desc(1, kBuf + 0x3000, 1, kDescFWrite);
    ring.make_available(3);
    EXPECT_EQ(vq.pending(), 1);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.head, 3);
    ASSERT_EQ(chain.segments.size(), 3u);
    EXPECT_FALSE(chain.segments[0].writable);
    EXPECT_TRUE(chain.segments[1].writable);
    EXPECT_EQ(chain.segments[1].addr, kBuf + 0x1000);
    EXPECT_EQ(chain.segments[1].host.data(), mem.view(kBuf + 0x1000, 1).data());
    EXPECT_EQ(chain.segments[1].host.size(), 4096u);
    EXPECT_EQ(chain.readable_bytes, 16u);
    EXPECT_EQ(chain.writable_bytes, 4097u);
    EXPECT_FALSE(chain.indirect);
    EXPECT_EQ(vq.last_avail(), 1);
}

TEST_F(VirtQueueTest, ZeroLengthDescriptorIsEmptySegment) {
    activate();
    ring.set_desc(0, 0xdeadbeef000, 0, kDescFNext, 1);  // no bytes: the address is never used
    ring.set_desc(1, kBuf, 8);
    ring.make_available(0);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    ASSERT_EQ(chain.segments.size(), 2u);
    EXPECT_TRUE(chain.segments[0].host.empty());
}

TEST_F(VirtQueueTest, BufferOutsideRamIsChainError) {
    activate();
    ring.set_desc(0, kRam, 16);  // starts just past the end
    ring.make_available(0);
    ring.set_desc(1, kRam - 8, 16);  // crosses the end
    ring.make_available(1);
    ring.set_desc(2, ~0ull - 7, 16);  // addr + len overflows
    ring.make_available(2);
    ring.set_desc(3, 0x10, 0xffffffff);  // longer than RAM
    ring.make_available(3);
    EXPECT_EQ(expect_chain_error(QueueError::DescOutOfRam), 0);
    EXPECT_EQ(expect_chain_error(QueueError::DescOutOfRam), 1);
    EXPECT_EQ(expect_chain_error(QueueError::DescOutOfRam), 2);
    EXPECT_EQ(expect_chain_error(QueueError::DescOutOfRam), 3);
    // The queue goes on: a good chain after the bad ones.
    ring.set_desc(4, kBuf, 16);
    ring.make_available(4);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.head, 4);
    EXPECT_FALSE(vq.broken());
}

TEST_F(VirtQueueTest, LoopIsChainTooLong) {
    activate();
    ring.set_desc(0, kBuf, 16, kDescFNext, 1);
    ring.set_desc(1, kBuf, 16, kDescFNext, 0);
    ring.make_available(0);
    ring.set_desc(2, kBuf, 16, kDescFNext, 2);  // self loop
    ring.make_available(2);
    expect_chain_error(QueueError::ChainTooLong);
    expect_chain_error(QueueError::ChainTooLong);
}

TEST_F(VirtQueueTest, ChainOfWholeTableIsFineOneMoreIsNot) {
    activate();
    for (uint16_t i = 0; i < 7; ++i) ring.set_desc(i, kBuf, 16, kDescFNext, uint16_t(i + 1));
    ring.set_desc(7, kBuf, 16);
    ring.make_available(0);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.segments.size(), 8u);
    ring.set_desc(7, kBuf, 16, kDescFNext, 0);  // now a cycle through all 8
    ring.make_available(0);
    expect_chain_error(QueueError::ChainTooLong);
}

TEST_F(VirtQueueTest, NextOutOfRange) {
    activate();
    ring.set_desc(0, kBuf, 16, kDescFNext, 8);
    ring.make_available(0);
    expect_chain_error(QueueError::NextOutOfRange);
}

TEST_F(VirtQueueTest, ReadableAfterWritableRefused) {
    activate();
    ring.set_desc(0, kBuf, 16, kDescFNext | kDescFWrite, 1);
    ring.set_desc(1, kBuf, 16);
    ring.make_available(0);
    expect_chain_error(QueueError::ReadableAfterWritable);
}

TEST_F(VirtQueueTest, IndirectTable) {
    activate();
    ring.write_desc(kTable, 0, kBuf, 16, kDescFNext, 2);
    ring.write_desc(kTable, 2, kBuf + 0x1000, 512, kDescFNext | kDescFWrite, 1);
    ring.write_desc(kTable, 1, kBuf + 0x2000, 1, kDescFWrite);
    ring.set_desc(4, kTable, 3 * 16, kDescFIndirect | kDescFWrite);  // WRITE on it is ignored
    ring.make_available(4);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    EXPECT_TRUE(chain.indirect);
    EXPECT_EQ(chain.head, 4);
    ASSERT_EQ(chain.segments.size(), 3u);
    EXPECT_EQ(chain.segments[2].addr, kBuf + 0x2000);
    EXPECT_EQ(chain.readable_bytes, 16u);
    EXPECT_EQ(chain.writable_bytes, 513u);
}

TEST_F(VirtQueueTest, DirectThenIndirect) {
    activate();
    ring.write_desc(kTable, 0, kBuf + 0x1000, 1, kDescFWrite);
    ring.set_desc(0, kBuf, 16, kDescFNext, 1);
    ring.set_desc(1, kTable, 16, kDescFIndirect);
    ring.make_available(0);
    auto r = vq.pop(chain);
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.segments.size(), 2u);
}

TEST_F(VirtQueueTest, IndirectMalformed) {
    activate();
    ring.write_desc(kTable, 0, kBuf, 16);
    // size not a multiple of 16, zero, more entries than the queue size
    ring.set_desc(0, kTable, 17, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectBadSize);
    ring.set_desc(0, kTable, 0, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectBadSize);
    ring.set_desc(0, kTable, 16 * 9, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectBadSize);
    // table outside RAM
    ring.set_desc(0, kRam - 16, 32, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectOutOfRam);
    // INDIRECT together with NEXT
    ring.set_desc(0, kTable, 16, kDescFIndirect | kDescFNext, 1);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectWithNext);
    // nested indirect
    ring.write_desc(kTable, 0, kTable + 0x100, 16, kDescFIndirect);
    ring.set_desc(0, kTable, 16, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectNested);
    // a loop inside the table
    ring.write_desc(kTable, 0, kBuf, 16, kDescFNext, 1);
    ring.write_desc(kTable, 1, kBuf, 16, kDescFNext, 0);
    ring.set_desc(0, kTable, 32, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::ChainTooLong);
    // next beyond the table's own length (the queue is longer)
    ring.write_desc(kTable, 0, kBuf, 16, kDescFNext, 2);
    ring.set_desc(0, kTable, 32, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::NextOutOfRange);
    // a buffer in the table outside RAM
    ring.write_desc(kTable, 0, kRam, 16);
    ring.set_desc(0, kTable, 16, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::DescOutOfRam);
    EXPECT_FALSE(vq.broken());
}

TEST_F(VirtQueueTest, IndirectWithoutFeatureRefused) {
    activate(false, /*indirect=*/false);
    ring.write_desc(kTable, 0, kBuf, 16);
    ring.set_desc(0, kTable, 16, kDescFIndirect);
    ring.make_available(0);
    expect_chain_error(QueueError::IndirectNotNegotiated);
}

TEST_F(VirtQueueTest, AvailIndexJumpBreaksQueue) {
    activate();
    ring.set_desc(0, kBuf, 16);
    ring.set_avail_idx(9);  // 9 > size 8 past what the device consumed
    auto r = vq.pop(chain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, QueueError::AvailIdxJump);
    EXPECT_TRUE(is_ring_error(r.error().error));
    EXPECT_TRUE(vq.broken());
    EXPECT_EQ(vq.pending(), 0);
    ring.set_avail_idx(1);  // even a sane index later does not revive it
    r = vq.pop(chain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, QueueError::AvailIdxJump);
    // Only a reset and a new activation do.
    vq.reset();
    activate();
    ring.set_avail_idx(0);
    ring.make_available(0);
    r = vq.pop(chain);
    EXPECT_TRUE(r && *r);
}

TEST_F(VirtQueueTest, AvailIndexBackwardsIsAJumpToo) {
    activate();
    ring.set_desc(0, kBuf, 16);
    ring.make_available(0);
    ASSERT_TRUE(vq.pop(chain));
    ring.set_avail_idx(0);  // moved back by one: 0xffff entries "available"
    auto r = vq.pop(chain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, QueueError::AvailIdxJump);
}

TEST_F(VirtQueueTest, HeadOutOfRangeBreaksQueue) {
    activate();
    ring.make_available(8);
    auto r = vq.pop(chain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, QueueError::HeadOutOfRange);
    EXPECT_TRUE(vq.broken());
}

TEST_F(VirtQueueTest, ActivationChecks) {
    QueueAddresses a = ring.addresses();
    EXPECT_FALSE(vq.activate(a, 0, false, false));
    EXPECT_FALSE(vq.activate(a, 6, false, false));    // not a power of two
    EXPECT_FALSE(vq.activate(a, 512, false, false));  // more than max 256
    QueueAddresses bad = a;
    bad.desc += 8;  // descriptor table must be 16-byte aligned
    EXPECT_FALSE(vq.activate(bad, 8, false, false));
    bad = a;
    bad.driver += 1;
    EXPECT_FALSE(vq.activate(bad, 8, false, false));
    bad = a;
    bad.device += 2;
    EXPECT_FALSE(vq.activate(bad, 8, false, false));
    bad = a;
    bad.device = kRam - 16;  // used ring runs past RAM
    EXPECT_FALSE(vq.activate(bad, 8, false, false));
    bad = a;
    bad.desc = ~0ull & ~15ull;
    EXPECT_FALSE(vq.activate(bad, 8, false, false));
    EXPECT_FALSE(vq.ready());
    EXPECT_TRUE(vq.activate(a, 8, false, false));
    EXPECT_TRUE(vq.ready());
}

TEST_F(VirtQueueTest, UsedRingAndInterruptFlag) {
    activate();
    ring.set_desc(0, kBuf, 16);
    ring.make_available(0);
    ASSERT_TRUE(vq.pop(chain));
    vq.push_used(0, 42);
    EXPECT_EQ(ring.used_idx(), 0);  // not published yet
    EXPECT_TRUE(vq.publish_used());
    EXPECT_EQ(ring.used_idx(), 1);
    EXPECT_EQ(ring.used(0), (std::pair<uint32_t, uint32_t>{0, 42}));
    EXPECT_FALSE(vq.publish_used());  // nothing new
    ring.set_avail_flags(kAvailFNoInterrupt);
    vq.push_used(0, 1);
    EXPECT_FALSE(vq.publish_used());
    EXPECT_EQ(ring.used_idx(), 2);
}

TEST_F(VirtQueueTest, EventIdxInterruptSuppression) {
    activate(/*event_idx=*/true);
    ring.set_used_event(2);  // interrupt when used idx passes 2
    vq.push_used(0, 0);
    EXPECT_FALSE(vq.publish_used());  // 0 -> 1
    vq.push_used(0, 0);
    EXPECT_FALSE(vq.publish_used());  // 1 -> 2
    vq.push_used(0, 0);
    EXPECT_TRUE(vq.publish_used());   // 2 -> 3 crosses used_event
    vq.push_used(0, 0);
    vq.push_used(0, 0);
    ring.set_used_event(3);
    EXPECT_TRUE(vq.publish_used());   // 3 -> 5: 3 lies in [3, 5)
}

TEST_F(VirtQueueTest, NotificationSuppression) {
    activate(/*event_idx=*/false);
    vq.disable_notifications();
    EXPECT_EQ(ring.used_flags(), kUsedFNoNotify);
    EXPECT_FALSE(vq.enable_notifications());
    EXPECT_EQ(ring.used_flags(), 0);
    ring.set_desc(0, kBuf, 16);
    ring.make_available(0);
    vq.disable_notifications();
    EXPECT_TRUE(vq.enable_notifications());  // a buffer arrived meanwhile
}

TEST_F(VirtQueueTest, EventIdxAvailEvent) {
    activate(/*event_idx=*/true);
    ring.set_desc(0, kBuf, 16);
    ring.make_available(0);
    ring.make_available(0);
    ASSERT_TRUE(vq.pop(chain));
    vq.disable_notifications();
    EXPECT_TRUE(vq.enable_notifications());  // one still pending
    EXPECT_EQ(ring.avail_event(), 1);
    ASSERT_TRUE(vq.pop(chain));
    EXPECT_FALSE(vq.enable_notifications());
    EXPECT_EQ(ring.avail_event(), 2);
}

TEST_F(VirtQueueTest, IndicesWrapAround) {
    activate(/*event_idx=*/true);
    ring.set_desc(0, kBuf, 16);
    for (uint32_t i = 0; i < 70000; ++i) {
        ring.make_available(0);
        auto r = vq.pop(chain);
        ASSERT_TRUE(r && *r) << "at " << i;
        vq.push_used(0, i);
        vq.publish_used();
    }
    EXPECT_EQ(ring.used_idx(), uint16_t(70000));
    EXPECT_EQ(vq.last_avail(), uint16_t(70000));
}

// Hostile rewrites between checks cannot matter: every field is read once.
// Here the descriptor table is garbage everywhere; the walker must stay in
// bounds whatever it finds (ASan checks the "in bounds" part).
TEST_F(VirtQueueTest, GarbageTableNeverEscapes) {
    activate();
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 2000; ++round) {
        for (uint16_t i = 0; i < 8; ++i) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t addr = (x & 1) ? (x >> 8) % (kRam + 0x1000) : x;
            ring.set_desc(i, addr, uint32_t(x >> 40), uint16_t(x & 7), uint16_t((x >> 20) % 10));
            ring.write_desc(kTable, i, addr ^ 0x5555, uint32_t(x >> 33), uint16_t((x >> 3) & 7), uint16_t((x >> 24) % 10));
        }
        ring.make_available(uint16_t(x % 8));
        auto r = vq.pop(chain);
        if (r) {
            ASSERT_TRUE(*r);
            for (const auto& s : chain.segments) {
                if (s.len) {
                    ASSERT_FALSE(s.host.empty());
                    ASSERT_TRUE(mem.contains(s.addr, s.len));
                }
            }
            ASSERT_LE(chain.segments.size(), 16u);
        } else {
            ASSERT_FALSE(is_ring_error(r.error().error));
        }
    }
}

}  // namespace
}  // namespace vireo::test
