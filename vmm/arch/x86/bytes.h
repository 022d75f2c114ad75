// Bounds-checked little-endian views of byte buffers, shared by the x86 image
// parsers and boot-table writers. Parsers read hostile files: every read goes
// through a range check written so that it cannot overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace vireo::x86 {

// True if [off, off + len) lies inside a buffer of `total` bytes. Written as
// two comparisons so that a huge `off` or `len` cannot wrap around.
constexpr bool range_fits(uint64_t off, uint64_t len, uint64_t total) {
    return off <= total && len <= total - off;
}

// a + b, or nothing if it does not fit in 64 bits.
constexpr std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
    uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
    return r;
}

constexpr std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}

constexpr uint64_t align_down(uint64_t v, uint64_t align) { return v & ~(align - 1); }

// Copies a trivially copyable struct out of `buf` at `off`, or nothing if it
// does not fit. memcpy rather than a cast: the file offset may be unaligned.
// Only valid for little-endian layouts (we run on x86-64 hosts only).
template <typename T>
std::optional<T> read_struct(std::span<const uint8_t> buf, uint64_t off) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!range_fits(off, sizeof(T), buf.size())) return std::nullopt;
    T v;
    std::memcpy(&v, buf.data() + off, sizeof(T));
    return v;
}

// Unchecked little-endian loads for callers that checked the range already.
inline uint16_t get_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t get_le32(const uint8_t* p) { return uint32_t(get_le16(p)) | uint32_t(get_le16(p + 2)) << 16; }
inline uint64_t get_le64(const uint8_t* p) { return uint64_t(get_le32(p)) | uint64_t(get_le32(p + 4)) << 32; }

// Sum of all bytes mod 256; ACPI and MP tables are valid when this is 0.
inline uint8_t byte_sum(std::span<const uint8_t> bytes) {
    uint8_t s = 0;
    for (uint8_t b : bytes) s = uint8_t(s + b);
    return s;
}

// The byte that makes byte_sum of the whole range 0 when stored in it (with
// the checksum byte itself still 0 while summing).
inline uint8_t checksum_byte(std::span<const uint8_t> bytes) { return uint8_t(0x100 - byte_sum(bytes)); }

// Builds a table by appending little-endian fields; patching by offset lets a
// length or checksum be filled in once the table is complete.
class ByteWriter {
public:
    size_t size() const { return buf_.size(); }
    std::vector<uint8_t>& bytes() { return buf_; }
    const std::vector<uint8_t>& bytes() const { return buf_; }

    void u8(uint8_t v) { buf_.push_back(v); }
    void u16(uint16_t v) { le(v, 2); }
    void u32(uint32_t v) { le(v, 4); }
    void u64(uint64_t v) { le(v, 8); }
    // Appends exactly `width` bytes of `s`, padding with `pad` (ACPI OEM ids
    // are space-padded, MP table strings too).
    void text(std::string_view s, size_t width, char pad = ' ') {
        for (size_t i = 0; i < width; ++i) buf_.push_back(uint8_t(i < s.size() ? s[i] : pad));
    }
    void append(std::span<const uint8_t> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
    void zeros(size_t n) { buf_.insert(buf_.end(), n, 0); }
    void pad_to(size_t align) {
        while (buf_.size() % align) buf_.push_back(0);
    }

    void patch_u8(size_t off, uint8_t v) { buf_.at(off) = v; }
    void patch_u16(size_t off, uint16_t v) { patch(off, v, 2); }
    void patch_u32(size_t off, uint32_t v) { patch(off, v, 4); }

private:
    void le(uint64_t v, int n) {
        for (int i = 0; i < n; ++i) buf_.push_back(uint8_t(v >> (8 * i)));
    }
    void patch(size_t off, uint64_t v, int n) {
        for (int i = 0; i < n; ++i) buf_.at(off + i) = uint8_t(v >> (8 * i));
    }
    std::vector<uint8_t> buf_;
};

}  // namespace vireo::x86
