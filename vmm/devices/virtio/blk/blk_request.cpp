#include "vmm/devices/virtio/blk/blk_request.h"

#include <algorithm>
#include <cstring>

namespace vireo {

std::string_view to_string(BlkError e) {
    switch (e) {
        case BlkError::NoStatus: return "no device-writable status byte";
        case BlkError::ShortHeader: return "request header shorter than 16 bytes";
        case BlkError::BadDirection: return "data buffers in the wrong direction for the request";
        case BlkError::BadLength: return "data length not a whole number of 512-byte sectors";
        case BlkError::OutOfRange: return "sectors beyond the disk's capacity";
        case BlkError::ReadOnly: return "write to a read-only disk";
        case BlkError::Unsupported: return "unsupported request type";
    }
    return "unknown";
}

namespace {

// Appends to `iov` the bytes [begin, end) of the stream formed by the
// segments of one direction, in order.
void slice(const DescChain& chain, bool writable, uint64_t begin, uint64_t end, std::vector<iovec>& iov) {
    uint64_t pos = 0;
    for (const auto& s : chain.segments) {
        if (s.writable != writable || s.len == 0) continue;
        uint64_t s_begin = pos, s_end = pos + s.len;
        pos = s_end;
        uint64_t b = std::max(begin, s_begin), e = std::min(end, s_end);
        if (b < e) iov.push_back({s.host.data() + (b - s_begin), size_t(e - b)});
        if (pos >= end) break;
    }
}

}  // namespace

std::expected<BlkRequest, BlkRequestError> parse_blk_request(const DescChain& chain, const BlkLimits& limits,
                                                             std::vector<iovec>& iov) {
    iov.clear();
    // The status byte: the last byte of the last non-empty writable segment.
    uint8_t* status = nullptr;
    for (auto it = chain.segments.rbegin(); it != chain.segments.rend(); ++it)
        if (it->writable && it->len > 0) {
            status = it->host.data() + it->len - 1;
            break;
        }
    if (!status) return std::unexpected(BlkRequestError{BlkError::NoStatus, nullptr, blk::kStatusIoErr});
    auto fail = [&](BlkError e) {
        iov.clear();
        return std::unexpected(
            BlkRequestError{e, status, e == BlkError::Unsupported ? blk::kStatusUnsupp : blk::kStatusIoErr});
    };
    if (chain.readable_bytes < blk::kHeaderSize) return fail(BlkError::ShortHeader);

    // Gather the header: it may be split across readable descriptors.
    uint8_t header[blk::kHeaderSize];
    uint64_t got = 0;
    for (const auto& s : chain.segments) {
        if (s.writable || got == blk::kHeaderSize) break;
        if (s.len == 0) continue;  // an empty descriptor has no host view
        uint64_t n = std::min<uint64_t>(s.len, blk::kHeaderSize - got);
        std::memcpy(header + got, s.host.data(), n);
        got += n;
    }
    BlkRequest req;
    std::memcpy(&req.type, header, 4);
    std::memcpy(&req.sector, header + 8, 8);
    req.status = status;

    const uint64_t readable_data = chain.readable_bytes - blk::kHeaderSize;
    const uint64_t writable_data = chain.writable_bytes - 1;
    auto check_range = [&](uint64_t len) {
        uint64_t n = len / blk::kSectorSize;
        return req.sector <= limits.capacity_sectors && n <= limits.capacity_sectors - req.sector;
    };
    switch (req.type) {
        case blk::kTypeIn:
            if (readable_data) return fail(BlkError::BadDirection);
            if (writable_data % blk::kSectorSize) return fail(BlkError::BadLength);
            if (!check_range(writable_data)) return fail(BlkError::OutOfRange);
            req.data_len = writable_data;
            slice(chain, true, 0, writable_data, iov);
            return req;
        case blk::kTypeOut:
            if (writable_data) return fail(BlkError::BadDirection);
            if (readable_data % blk::kSectorSize) return fail(BlkError::BadLength);
            if (limits.read_only) return fail(BlkError::ReadOnly);
            if (!check_range(readable_data)) return fail(BlkError::OutOfRange);
            req.data_len = readable_data;
            slice(chain, false, blk::kHeaderSize, chain.readable_bytes, iov);
            return req;
        case blk::kTypeFlush:
            // No data; the sector field is reserved (§5.2.6.2 says the
            // driver sets it to 0, the device need not check).
            if (readable_data || writable_data) return fail(BlkError::BadDirection);
            return req;
        case blk::kTypeGetId:
            if (writable_data == 0) return fail(BlkError::BadLength);
            req.data_len = writable_data;
            slice(chain, true, 0, writable_data, iov);
            return req;
        default:
            return fail(BlkError::Unsupported);
    }
}

}  // namespace vireo
