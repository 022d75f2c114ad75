// The virtio-blk request parser: any framing of header, data and status;
// every malformed request refused with the status the guest should see.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/virtio_test_ring.h"
#include "vmm/devices/virtio/blk/blk_request.h"

namespace vireo::test {
namespace {

constexpr uint64_t kHdr = 0x1000, kData = 0x10000, kStatus = 0x3000;

class BlkRequestTest : public ::testing::Test {
protected:
    BlkRequestTest() : mem(make_guest_memory(1u << 20)) {}

    void header(uint32_t type, uint64_t sector, uint64_t at = kHdr) {
        uint8_t h[16] = {};
        std::memcpy(h, &type, 4);
        std::memcpy(h + 8, &sector, 8);
        mem.write(at, h);
    }
    void seg(uint64_t addr, uint32_t len, bool writable) {
        chain.segments.push_back({addr, len, writable, mem.view(addr, len)});
        (writable ? chain.writable_bytes : chain.readable_bytes) += len;
    }
    std::expected<BlkRequest, BlkRequestError> parse(BlkLimits limits = {2048, false}) {
        return parse_blk_request(chain, limits, iov);
    }
    uint8_t* host(uint64_t addr) { return mem.view(addr, 1).data(); }

    GuestMemory mem;
    DescChain chain;
    std::vector<iovec> iov;
};

TEST_F(BlkRequestTest, ReadThreeDescriptors) {
    header(blk::kTypeIn, 7);
    seg(kHdr, 16, false);
    seg(kData, 4096, true);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, blk::kTypeIn);
    EXPECT_EQ(r->sector, 7u);
    EXPECT_EQ(r->data_len, 4096u);
    EXPECT_EQ(r->status, host(kStatus));
    ASSERT_EQ(iov.size(), 1u);
    EXPECT_EQ(iov[0].iov_base, host(kData));
    EXPECT_EQ(iov[0].iov_len, 4096u);
}

TEST_F(BlkRequestTest, WriteWithSplitHeaderAndSharedStatus) {
    // Header split 5 + 11 (the 11 followed by 1024 bytes of data in the
    // same descriptor); status at the end of a writable 1-byte buffer.
    header(blk::kTypeOut, 100, kData - 5);
    seg(kData - 5, 5, false);
    seg(kData, 11 + 1024, false);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, blk::kTypeOut);
    EXPECT_EQ(r->sector, 100u);
    EXPECT_EQ(r->data_len, 1024u);
    ASSERT_EQ(iov.size(), 1u);
    EXPECT_EQ(iov[0].iov_base, host(kData + 11));
}

// Found by fuzz_blk_request: an empty descriptor inside the header has no
// host view (a null pointer), which must not be copied from.
TEST_F(BlkRequestTest, EmptyDescriptorInsideHeader) {
    header(blk::kTypeIn, 3);
    seg(kHdr, 8, false);
    chain.segments.push_back({0, 0, false, {}});
    seg(kHdr + 8, 8, false);
    seg(kData, 512, true);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sector, 3u);
    EXPECT_EQ(r->data_len, 512u);
}

TEST_F(BlkRequestTest, ReadDataAndStatusInOneDescriptor) {
    header(blk::kTypeIn, 0);
    seg(kHdr, 16, false);
    seg(kData, 512 * 3 + 1, true);
    auto r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data_len, 1536u);
    EXPECT_EQ(r->status, host(kData + 1536));
    ASSERT_EQ(iov.size(), 1u);
    EXPECT_EQ(iov[0].iov_len, 1536u);
}

TEST_F(BlkRequestTest, ScatteredRead) {
    header(blk::kTypeIn, 0);
    seg(kHdr, 16, false);
    seg(kData, 512, true);
    seg(kData + 0x2000, 0, true);  // empty descriptors are skipped
    seg(kData + 0x4000, 1024, true);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data_len, 1536u);
    ASSERT_EQ(iov.size(), 2u);
    EXPECT_EQ(iov[1].iov_base, host(kData + 0x4000));
}

TEST_F(BlkRequestTest, NoStatusByte) {
    header(blk::kTypeIn, 0);
    seg(kHdr, 16, false);
    auto r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::NoStatus);
    EXPECT_EQ(r.error().status, nullptr);
}

TEST_F(BlkRequestTest, ShortHeader) {
    seg(kHdr, 15, false);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::ShortHeader);
    EXPECT_EQ(r.error().status, host(kStatus));
    EXPECT_EQ(r.error().status_value, blk::kStatusIoErr);
}

TEST_F(BlkRequestTest, WrongDirections) {
    header(blk::kTypeIn, 0);  // a read with device-readable data
    seg(kHdr, 16 + 512, false);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::BadDirection);
    chain.clear();
    header(blk::kTypeOut, 0);  // a write with device-writable data
    seg(kHdr, 16, false);
    seg(kData, 512, true);
    seg(kStatus, 1, true);
    r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::BadDirection);
    EXPECT_TRUE(iov.empty());
}

TEST_F(BlkRequestTest, PartialSector) {
    header(blk::kTypeIn, 0);
    seg(kHdr, 16, false);
    seg(kData, 511, true);
    seg(kStatus, 1, true);
    auto r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::BadLength);
}

TEST_F(BlkRequestTest, RangeChecks) {
    auto read_at = [&](uint64_t sector, uint32_t len) {
        chain.clear();
        header(blk::kTypeIn, sector);
        seg(kHdr, 16, false);
        if (len) seg(kData, len, true);
        seg(kStatus, 1, true);
        return parse({2048, false});
    };
    EXPECT_TRUE(read_at(2047, 512));   // the last sector
    EXPECT_TRUE(read_at(2048, 0));     // empty at the end: harmless
    auto r = read_at(2048, 512);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::OutOfRange);
    EXPECT_FALSE(read_at(2047, 1024));
    EXPECT_FALSE(read_at(~0ull, 512));        // sector overflow
    EXPECT_FALSE(read_at(~0ull - 1, 1024));   // sector + count overflow
    EXPECT_FALSE(read_at(1ull << 55, 512));   // sector * 512 would overflow
}

TEST_F(BlkRequestTest, WriteToReadOnly) {
    header(blk::kTypeOut, 0);
    seg(kHdr, 16 + 512, false);
    seg(kStatus, 1, true);
    auto r = parse({2048, true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::ReadOnly);
    EXPECT_EQ(r.error().status_value, blk::kStatusIoErr);
    EXPECT_TRUE(parse({2048, false}));
}

TEST_F(BlkRequestTest, FlushAndGetId) {
    header(blk::kTypeFlush, 0);
    seg(kHdr, 16, false);
    seg(kStatus, 1, true);
    auto r = parse({2048, true});  // a flush on a read-only disk is fine
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, blk::kTypeFlush);
    chain.clear();
    header(blk::kTypeGetId, 0);
    seg(kHdr, 16, false);
    seg(kData, 20, true);
    seg(kStatus, 1, true);
    r = parse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data_len, 20u);
    chain.clear();
    header(blk::kTypeGetId, 0);
    seg(kHdr, 16, false);
    seg(kStatus, 1, true);
    r = parse();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().error, BlkError::BadLength);
}

TEST_F(BlkRequestTest, UnsupportedTypes) {
    for (uint32_t type : {2u, 3u, 10u, 11u, 13u, 14u, 0xffffffffu}) {
        chain.clear();
        header(type, 0);
        seg(kHdr, 16, false);
        seg(kStatus, 1, true);
        auto r = parse();
        ASSERT_FALSE(r) << type;
        EXPECT_EQ(r.error().error, BlkError::Unsupported);
        EXPECT_EQ(r.error().status_value, blk::kStatusUnsupp);
    }
}

}  // namespace
}  // namespace vireo::test
