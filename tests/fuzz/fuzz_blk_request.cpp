// libFuzzer target: the virtio-blk request parser on any chain of
// segments. The chain is built the way the walker builds it (every segment
// a validated view of guest RAM), with any framing of header, data and
// status, any request type, sector and limits; the parser must never hand
// out an iovec outside the chain's buffers, never overrun the status byte,
// and must agree with itself on lengths and range checks.
//
// Input: [0] segment count (mod 33), [1] flags (bit 0 read-only), [2..9]
// le64 capacity in sectors, then 6 bytes per segment (le16 offset/8 into
// guest RAM, le16 length, byte writable, byte unused), then the bytes of
// guest RAM.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "vmm/devices/virtio/blk/blk_request.h"
#include "vmm/kvm/guest_memory.h"

namespace {

constexpr uint64_t kRam = 256 * 1024;

vireo::GuestMemory& memory() {
    static vireo::GuestMemory mem = [] {
        auto m = vireo::GuestMemory::create({{0, kRam}}, false);
        if (!m) std::abort();
        return std::move(*m);
    }();
    return mem;
}

bool inside(const vireo::DescChain& chain, const iovec& v, bool writable) {
    auto* b = static_cast<uint8_t*>(v.iov_base);
    for (const auto& s : chain.segments)
        if (s.writable == writable && s.len && b >= s.host.data() && b + v.iov_len <= s.host.data() + s.host.size())
            return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 10) return 0;
    vireo::GuestMemory& mem = memory();
    unsigned nseg = data[0] % 33;
    bool read_only = data[1] & 1;
    uint64_t capacity;
    std::memcpy(&capacity, data + 2, 8);
    size_t pos = 10;
    if (size < pos + 6 * nseg) return 0;

    vireo::DescChain chain;
    for (unsigned i = 0; i < nseg; ++i, pos += 6) {
        uint64_t addr = uint64_t(data[pos] | (data[pos + 1] << 8)) * 8;
        uint32_t len = uint32_t(data[pos + 2] | (data[pos + 3] << 8));
        bool writable = data[pos + 4] & 1;
        // The walker's guarantees: inside RAM, readable before writable.
        if (!chain.segments.empty() && chain.segments.back().writable && !writable) writable = true;
        vireo::DescSegment s{addr, len, writable, {}};
        if (len) {
            s.host = mem.view(addr, len);
            if (s.host.empty()) continue;
        }
        (writable ? chain.writable_bytes : chain.readable_bytes) += len;
        chain.segments.push_back(s);
    }
    auto ram = mem.view(0, kRam);
    std::memset(ram.data(), 0, ram.size());
    std::memcpy(ram.data(), data + pos, std::min<size_t>(size - pos, kRam));

    std::vector<iovec> iov;
    iov.reserve(64);
    auto r = vireo::parse_blk_request(chain, {capacity, read_only}, iov);
    if (!r) {
        if (r.error().error != vireo::BlkError::NoStatus) {
            if (!r.error().status || !mem.contains(uint64_t(r.error().status - ram.data()), 1)) std::abort();
            *r.error().status = r.error().status_value;
        }
        if (!iov.empty()) std::abort();
        return 0;
    }
    // The status is the last byte of the last non-empty writable segment.
    // (Segments may alias each other: the guest may point two descriptors
    // at the same bytes, so this is checked by position, not by address.)
    const vireo::DescSegment* last = nullptr;
    for (const auto& s : chain.segments)
        if (s.writable && s.len) last = &s;
    if (!last || r->status != last->host.data() + last->len - 1) std::abort();
    uint64_t total = 0;
    bool writable = r->type != vireo::blk::kTypeOut;
    for (const auto& v : iov) {
        if (!inside(chain, v, writable)) std::abort();
        std::memset(v.iov_base, 0xa5, v.iov_len);  // ASan: writable memory
        total += v.iov_len;
    }
    if (total != r->data_len) std::abort();
    if (iov.size() > chain.segments.size()) std::abort();
    if (r->type == vireo::blk::kTypeIn || r->type == vireo::blk::kTypeOut) {
        if (r->data_len % 512) std::abort();
        if (r->sector > capacity || r->data_len / 512 > capacity - r->sector) std::abort();
        if (r->type == vireo::blk::kTypeOut && read_only) std::abort();
    }
    *r->status = 0;
    return 0;
}
