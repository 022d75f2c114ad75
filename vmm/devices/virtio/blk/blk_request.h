// virtio-blk requests (virtio 1.2 §5.2.6): from a validated descriptor chain
// to what the host must do. Pure and allocation-free given a reserved iovec
// vector, so the unit tests and the fuzzer drive it without a disk.
//
// Framing is not fixed (VIRTIO_F_VERSION_1 implies any layout): the header
// is the first 16 device-readable bytes wherever the descriptors split them,
// the status is the last device-writable byte, and the data is what lies in
// between (readable for OUT, writable for IN and GET_ID).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <expected>
#include <string_view>
#include <vector>

#include "vmm/devices/virtio/virtqueue.h"

namespace vireo {

namespace blk {
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;
inline constexpr uint64_t kHeaderSize = 16;  // le32 type, le32 reserved, le64 sector
inline constexpr uint64_t kSectorSize = 512;

// Feature bits (§5.2.3).
inline constexpr unsigned kFSegMax = 2;
inline constexpr unsigned kFRo = 5;
inline constexpr unsigned kFBlkSize = 6;
inline constexpr unsigned kFFlush = 9;
inline constexpr unsigned kFTopology = 10;
inline constexpr unsigned kFMq = 12;
}  // namespace blk

enum class BlkError : uint8_t {
    NoStatus,       // no device-writable byte: nowhere to report anything
    ShortHeader,    // fewer than 16 device-readable bytes
    BadDirection,   // data in the wrong direction for the request type
    BadLength,      // data not a whole number of sectors (or empty GET_ID)
    OutOfRange,     // sector + length beyond the capacity (overflow-checked)
    ReadOnly,       // a write to a read-only disk
    Unsupported,    // a request type this device does not offer
};
std::string_view to_string(BlkError e);

struct BlkLimits {
    uint64_t capacity_sectors = 0;
    bool read_only = false;
};

struct BlkRequest {
    uint32_t type = 0;
    uint64_t sector = 0;
    uint64_t data_len = 0;      // bytes in `iov`
    uint8_t* status = nullptr;  // host address of the status byte
};

struct BlkRequestError {
    BlkError error;
    uint8_t* status;       // nullptr for NoStatus
    uint8_t status_value;  // what to write there: IOERR or UNSUPP
};

// Parses `chain`; on success `iov` holds the data buffers (host addresses in
// guest RAM) in order. `iov` is cleared first and never grows past the
// chain's segment count.
std::expected<BlkRequest, BlkRequestError> parse_blk_request(const DescChain& chain, const BlkLimits& limits,
                                                             std::vector<iovec>& iov);

}  // namespace vireo
