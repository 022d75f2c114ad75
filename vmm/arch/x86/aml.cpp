#include "vmm/arch/x86/aml.h"

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace vireo::aml {

namespace {

// Opcodes (ACPI 6.x, 20.3 "AML Byte Stream Byte Values").
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefix = '^';
constexpr uint8_t kReturnOp = 0xa4;

// Resource descriptor tags (6.4.2 small, 6.4.3 large).
constexpr uint8_t kSmallIrq2 = 0x22;     // IRQ, 2 bytes: mask only
constexpr uint8_t kSmallIo = 0x47;       // I/O port, 7 bytes
constexpr uint8_t kSmallEndTag = 0x79;   // End tag, 1 byte: checksum
constexpr uint8_t kLargeMemory32Fixed = 0x86;
constexpr uint8_t kLargeExtIrq = 0x89;

constexpr uint32_t kMaxPkgLength = 1u << 28;

[[noreturn]] void bad(std::string msg) { throw std::invalid_argument("aml: " + msg); }

bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

void put_name_seg(Bytes& out, std::string_view seg) {
    if (seg.empty() || seg.size() > 4 || !lead_char(seg[0]))
        bad(fmt::format("invalid name segment \"{}\"", seg));
    for (char c : seg)
        if (!name_char(c)) bad(fmt::format("invalid character in name segment \"{}\"", seg));
    for (size_t i = 0; i < 4; ++i) out.push_back(uint8_t(i < seg.size() ? seg[i] : '_'));
}

void le(Bytes& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// Opcode(s), PkgLength, then the body: the shape of every "package" term.
Bytes with_pkg(std::initializer_list<uint8_t> ops, const Bytes& body) {
    Bytes out(ops);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

}  // namespace

Bytes join(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) append(out, p);
    return out;
}

void append(Bytes& to, const Bytes& part) { to.insert(to.end(), part.begin(), part.end()); }

Bytes encode_pkg_length(uint32_t total) {
    if (total >= kMaxPkgLength) bad(fmt::format("PkgLength {} exceeds 2^28 - 1", total));
    if (total < 0x40) return {uint8_t(total)};
    Bytes out{uint8_t(total & 0x0f)};
    uint32_t rest = total >> 4;
    while (rest) {
        out.push_back(uint8_t(rest));
        rest >>= 8;
    }
    out[0] = uint8_t(out[0] | ((out.size() - 1) << 6));
    return out;
}

Bytes pkg_length(size_t body_len) {
    // The length counts its own bytes, so try each width until the total
    // still fits that width.
    for (uint32_t n = 1; n <= 4; ++n) {
        const uint64_t total = uint64_t(body_len) + n;
        const uint64_t limit = n == 1 ? 0x40 : 1ull << (4 + 8 * (n - 1));
        if (total < limit) return encode_pkg_length(uint32_t(total));
    }
    bad(fmt::format("body of {} bytes is too long for a PkgLength", body_len));
}

Bytes name_string(std::string_view path) {
    Bytes out;
    if (!path.empty() && path[0] == '\\') {
        out.push_back(kRootChar);
        path.remove_prefix(1);
    } else {
        while (!path.empty() && path[0] == '^') {
            out.push_back(kParentPrefix);
            path.remove_prefix(1);
        }
    }
    std::vector<std::string_view> segs;
    while (!path.empty()) {
        const size_t dot = path.find('.');
        segs.push_back(path.substr(0, dot));
        if (dot == std::string_view::npos) break;
        path.remove_prefix(dot + 1);
        if (path.empty()) bad("name path ends with '.'");
    }
    if (segs.empty()) {
        out.push_back(0);  // NullName
    } else if (segs.size() == 2) {
        out.push_back(kDualNamePrefix);
    } else if (segs.size() > 2) {
        if (segs.size() > 255) bad("name path has more than 255 segments");
        out.push_back(kMultiNamePrefix);
        out.push_back(uint8_t(segs.size()));
    }
    for (auto s : segs) put_name_seg(out, s);
    return out;
}

Bytes integer(uint64_t v) {
    Bytes out;
    if (v == 0) return {kZeroOp};
    if (v == 1) return {kOneOp};
    if (v <= 0xff) {
        out.push_back(kBytePrefix);
        le(out, v, 1);
    } else if (v <= 0xffff) {
        out.push_back(kWordPrefix);
        le(out, v, 2);
    } else if (v <= 0xffffffff) {
        out.push_back(kDWordPrefix);
        le(out, v, 4);
    } else {
        out.push_back(kQWordPrefix);
        le(out, v, 8);
    }
    return out;
}

Bytes dword(uint32_t v) {
    Bytes out{kDWordPrefix};
    le(out, v, 4);
    return out;
}

Bytes string(std::string_view s) {
    Bytes out{kStringPrefix};
    for (char c : s) {
        if (c <= 0 || static_cast<unsigned char>(c) > 0x7f) bad("string holds a NUL or non-ASCII character");
        out.push_back(uint8_t(c));
    }
    out.push_back(0);
    return out;
}

Bytes eisa_id(std::string_view id) {
    // Three letters in 5 bits each (A = 1), then four hex digits; stored so
    // that the bytes read in order are the big-endian form.
    const auto hex = [&](char c) -> uint32_t {
        if (c >= '0' && c <= '9') return uint32_t(c - '0');
        if (c >= 'A' && c <= 'F') return uint32_t(c - 'A' + 10);
        bad(fmt::format("EISA id \"{}\" needs 4 upper-case hex digits", id));
    };
    if (id.size() != 7) bad(fmt::format("EISA id \"{}\" is not 7 characters", id));
    for (int i = 0; i < 3; ++i)
        if (id[i] < 'A' || id[i] > 'Z') bad(fmt::format("EISA id \"{}\" needs 3 upper-case letters", id));
    const uint32_t c1 = uint32_t(id[0] - '@'), c2 = uint32_t(id[1] - '@'), c3 = uint32_t(id[2] - '@');
    const uint8_t b0 = uint8_t((c1 << 2) | (c2 >> 3));
    const uint8_t b1 = uint8_t(((c2 & 7) << 5) | c3);
    const uint8_t b2 = uint8_t((hex(id[3]) << 4) | hex(id[4]));
    const uint8_t b3 = uint8_t((hex(id[5]) << 4) | hex(id[6]));
    return dword(uint32_t(b0) | uint32_t(b1) << 8 | uint32_t(b2) << 16 | uint32_t(b3) << 24);
}

Bytes buffer(std::span<const uint8_t> data) {
    Bytes body = integer(data.size());
    body.insert(body.end(), data.begin(), data.end());
    return with_pkg({kBufferOp}, body);
}

Bytes package(std::initializer_list<Bytes> elements) {
    if (elements.size() > 255) bad("a Package holds at most 255 elements");
    Bytes body{uint8_t(elements.size())};
    for (const Bytes& e : elements) append(body, e);
    return with_pkg({kPackageOp}, body);
}

Bytes name(std::string_view n, const Bytes& object) {
    Bytes out{kNameOp};
    append(out, name_string(n));
    append(out, object);
    return out;
}

Bytes scope(std::string_view path, const Bytes& body) { return with_pkg({kScopeOp}, join({name_string(path), body})); }

Bytes device(std::string_view n, const Bytes& body) {
    return with_pkg({kExtOpPrefix, kDeviceOp}, join({name_string(n), body}));
}

Bytes method(std::string_view n, unsigned nargs, bool serialized, const Bytes& body) {
    if (nargs > 7) bad("a Method takes at most 7 arguments");
    const uint8_t flags = uint8_t(nargs | (serialized ? 0x08 : 0));
    return with_pkg({kMethodOp}, join({name_string(n), Bytes{flags}, body}));
}

Bytes return_value(const Bytes& value) { return join({Bytes{kReturnOp}, value}); }

Bytes io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
    Bytes out{kSmallIo, 0x01};  // information: decodes 16 address bits
    le(out, min, 2);
    le(out, max, 2);
    out.push_back(alignment);
    out.push_back(length);
    return out;
}

Bytes irq_no_flags(uint8_t irq) {
    if (irq > 15) bad("IRQNoFlags takes an ISA IRQ (0-15)");
    Bytes out{kSmallIrq2};
    le(out, 1u << irq, 2);
    return out;
}

Bytes memory32_fixed(bool writable, uint32_t base, uint32_t length) {
    Bytes out{kLargeMemory32Fixed};
    le(out, 9, 2);  // length of the data that follows
    out.push_back(writable ? 1 : 0);
    le(out, base, 4);
    le(out, length, 4);
    return out;
}

Bytes interrupt(bool consumer, Trigger trigger, Polarity polarity, Sharing sharing,
                std::initializer_list<uint32_t> gsis) {
    if (gsis.size() == 0 || gsis.size() > 255) bad("Interrupt needs 1-255 interrupt numbers");
    Bytes out{kLargeExtIrq};
    le(out, 2 + 4 * gsis.size(), 2);
    // Bit 0 consumer, bit 1 edge, bit 2 active-low, bit 3 shared.
    out.push_back(uint8_t((consumer ? 1 : 0) | (trigger == Trigger::Edge ? 2 : 0) |
                          (polarity == Polarity::ActiveLow ? 4 : 0) | (sharing == Sharing::Shared ? 8 : 0)));
    out.push_back(uint8_t(gsis.size()));
    for (uint32_t g : gsis) le(out, g, 4);
    return out;
}

Bytes resource_template(std::initializer_list<Bytes> descriptors) {
    Bytes data;
    for (const Bytes& d : descriptors) append(data, d);
    data.push_back(kSmallEndTag);
    uint8_t sum = 0;
    for (uint8_t b : data) sum = uint8_t(sum + b);
    data.push_back(uint8_t(0x100 - sum));
    return buffer(data);
}

}  // namespace vireo::aml
