// A small builder for ACPI Machine Language (ACPI 6.x, chapter 20 "ACPI
// Machine Language Specification" and 6.4 "Resource Data Types"): just what
// vireo's DSDT needs. Each function returns the encoded bytes of one term;
// callers nest them by concatenation.
//
// The inputs are vireo's own constants, not guest or user data, so a
// malformed name is a programming error: it throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace vireo::aml {

using Bytes = std::vector<uint8_t>;

// Concatenates terms into one TermList.
Bytes join(std::initializer_list<Bytes> parts);
void append(Bytes& to, const Bytes& part);

// The PkgLength encoding of `total` (which counts the PkgLength bytes
// themselves): 1 byte below 64, else a lead byte whose top two bits count
// the 1-3 following bytes, 4 bits per lead byte then 8 per following byte.
// `total` must be below 2^28.
Bytes encode_pkg_length(uint32_t total);
// The PkgLength for a body of `body_len` bytes: picks the shortest encoding
// that covers the body plus itself.
Bytes pkg_length(size_t body_len);

// "\_SB.COM1", "_HID", "^PARN": root/parent prefixes, then 1..n NameSegs of
// up to 4 characters (padded with '_').
Bytes name_string(std::string_view path);

// Integer constants with the shortest prefix (Zero, One, Byte, Word, DWord,
// QWord); dword() always uses DWordPrefix.
Bytes integer(uint64_t v);
Bytes dword(uint32_t v);
// An ASCII string (no NUL inside), NUL-terminated in AML.
Bytes string(std::string_view s);
// EISAID("PNP0501"): the compressed 32-bit EISA id.
Bytes eisa_id(std::string_view id);
Bytes buffer(std::span<const uint8_t> data);
Bytes package(std::initializer_list<Bytes> elements);

Bytes name(std::string_view name, const Bytes& object);
Bytes scope(std::string_view path, const Bytes& body);
Bytes device(std::string_view name, const Bytes& body);
Bytes method(std::string_view name, unsigned nargs, bool serialized, const Bytes& body);
Bytes return_value(const Bytes& value);

// Resource descriptors for ResourceTemplate().
enum class Trigger { Level, Edge };
enum class Polarity { ActiveHigh, ActiveLow };
enum class Sharing { Exclusive, Shared };
// IO (Decode16, min, max, alignment, length)
Bytes io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQNoFlags () {irq}: ISA edge, active-high, exclusive.
Bytes irq_no_flags(uint8_t irq);
// Memory32Fixed (ReadWrite or ReadOnly, base, length)
Bytes memory32_fixed(bool writable, uint32_t base, uint32_t length);
// Interrupt (ResourceConsumer/Producer, trigger, polarity, sharing) {gsis}
Bytes interrupt(bool consumer, Trigger trigger, Polarity polarity, Sharing sharing,
                std::initializer_list<uint32_t> gsis);
// A Buffer holding the descriptors and the End Tag with a checksum that
// makes the bytes of the whole template sum to zero.
Bytes resource_template(std::initializer_list<Bytes> descriptors);

}  // namespace vireo::aml
