// libFuzzer target: the split-virtqueue walker over arbitrary guest memory
// and ring contents. The guest is hostile, so whatever the descriptor table,
// the available ring and the indirect tables say, the walker must stay
// inside guest RAM (ASan), terminate, and never hand out a segment outside
// RAM. Guest RAM here is two regions with a hole between them, so buffers
// that straddle a region's end are explored too.
//
// Input: [0] log2 of the queue size (mod 9: 1..256), [1] flags (bit 0
// EVENT_IDX, bit 1 INDIRECT_DESC), [2..7] le16 desc/16, avail/2, used/4
// (so rings may land anywhere, also outside RAM), then the bytes of the
// first region from address 0.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cstdlib>

#include "vmm/devices/virtio/blk/blk_request.h"
#include "vmm/devices/virtio/virtqueue.h"
#include "vmm/kvm/guest_memory.h"

namespace {

constexpr uint64_t kLow = 64 * 1024;        // region 0: [0, 64 KiB)
constexpr uint64_t kHighBase = 0x20000;     // region 1: [128 KiB, +4 KiB)
constexpr uint64_t kHigh = 4096;

vireo::GuestMemory& memory() {
    static vireo::GuestMemory mem = [] {
        auto m = vireo::GuestMemory::create({{0, kLow}, {kHighBase, kHigh}}, false);
        if (!m) std::abort();
        return std::move(*m);
    }();
    return mem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 8) return 0;
    vireo::GuestMemory& mem = memory();
    auto low = mem.view(0, kLow);
    auto high = mem.view(kHighBase, kHigh);
    std::memset(low.data(), 0, low.size());
    std::memset(high.data(), 0, high.size());
    size_t n = std::min<size_t>(size - 8, kLow);
    std::memcpy(low.data(), data + 8, n);
    // Whatever does not fit in region 0 seeds region 1.
    if (size - 8 > kLow) std::memcpy(high.data(), data + 8 + kLow, std::min<size_t>(size - 8 - kLow, kHigh));

    uint16_t qsize = uint16_t(1u << (data[0] % 9));
    bool event_idx = data[1] & 1, indirect = data[1] & 2;
    auto le16 = [&](size_t i) { return uint16_t(data[i] | (data[i + 1] << 8)); };
    vireo::QueueAddresses a{uint64_t(le16(2)) * 16, uint64_t(le16(4)) * 2, uint64_t(le16(6)) * 4};

    vireo::VirtQueue vq(mem, 256);
    if (!vq.activate(a, qsize, event_idx, indirect)) return 0;
    vireo::DescChain chain;
    chain.segments.reserve(512);
    std::vector<iovec> iov;
    iov.reserve(512);
    volatile uint8_t sink = 0;
    // More pops than the ring can hold: the walker must say "empty" or
    // "broken" by itself.
    for (unsigned i = 0; i < 2u * qsize + 8; ++i) {
        auto r = vq.pop(chain);
        if (!r) {
            if (vireo::is_ring_error(r.error().error)) break;
            if (r.error().head >= qsize) std::abort();  // a chain error always names a real head
            vq.push_used(r.error().head, 0);
            continue;
        }
        if (!*r) break;
        if (chain.head >= qsize) std::abort();
        uint64_t readable = 0, writable = 0;
        bool seen_writable = false;
        for (const auto& s : chain.segments) {
            if (s.len) {
                if (s.host.size() != s.len || !mem.contains(s.addr, s.len)) std::abort();
                sink = uint8_t(sink + s.host.front() + s.host.back());  // ASan: inside the mapping
            }
            if (!s.writable && seen_writable) std::abort();  // order was checked
            seen_writable |= s.writable;
            (s.writable ? writable : readable) += s.len;
        }
        if (readable != chain.readable_bytes || writable != chain.writable_bytes) std::abort();
        if (chain.segments.size() > 2u * qsize) std::abort();
        // What a device does next: parse, answer, publish.
        if (auto req = vireo::parse_blk_request(chain, {1u << 20, false}, iov))
            *req->status = 0;
        vq.push_used(chain.head, uint32_t(writable));
        vq.publish_used();
        if (i & 1) vq.disable_notifications();
        else (void)vq.enable_notifications();
    }
    (void)vq.pending();
    return 0;
}
