#include "vmm/arch/x86/aml.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace vireo::aml {
namespace {

using B = Bytes;

TEST(AmlPkgLength, EncodingsAtTheBoundaries) {
    EXPECT_EQ(encode_pkg_length(0), (B{0x00}));
    EXPECT_EQ(encode_pkg_length(63), (B{0x3f}));
    EXPECT_EQ(encode_pkg_length(64), (B{0x40, 0x04}));
    EXPECT_EQ(encode_pkg_length(65), (B{0x41, 0x04}));
    EXPECT_EQ(encode_pkg_length(4095), (B{0x4f, 0xff}));
    EXPECT_EQ(encode_pkg_length(4096), (B{0x80, 0x00, 0x01}));
    EXPECT_EQ(encode_pkg_length(0xfffff), (B{0x8f, 0xff, 0xff}));
    EXPECT_EQ(encode_pkg_length(0x100000), (B{0xc0, 0x00, 0x00, 0x01}));
    EXPECT_EQ(encode_pkg_length(0xfffffff), (B{0xcf, 0xff, 0xff, 0xff}));
    EXPECT_THROW(encode_pkg_length(0x10000000), std::invalid_argument);
}

TEST(AmlPkgLength, CountsItsOwnBytes) {
    // A 62-byte body plus a 1-byte length is 63: still one byte.
    EXPECT_EQ(pkg_length(62), (B{0x3f}));
    // 63 + 1 = 64 no longer fits one byte; with two bytes the total is 65.
    EXPECT_EQ(pkg_length(63), (B{0x41, 0x04}));
    EXPECT_EQ(pkg_length(4093), (B{0x4f, 0xff}));      // 4093 + 2 = 4095
    EXPECT_EQ(pkg_length(4094), (B{0x81, 0x00, 0x01}));  // 4094 + 3 = 4097 = 0x1001
    EXPECT_EQ(pkg_length(0), (B{0x01}));
}

TEST(Aml, IntegersUseTheShortestPrefix) {
    EXPECT_EQ(integer(0), (B{0x00}));
    EXPECT_EQ(integer(1), (B{0x01}));
    EXPECT_EQ(integer(5), (B{0x0a, 0x05}));
    EXPECT_EQ(integer(0xff), (B{0x0a, 0xff}));
    EXPECT_EQ(integer(0x100), (B{0x0b, 0x00, 0x01}));
    EXPECT_EQ(integer(0x12345678), (B{0x0c, 0x78, 0x56, 0x34, 0x12}));
    EXPECT_EQ(integer(0x100000000), (B{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
    EXPECT_EQ(dword(1), (B{0x0c, 1, 0, 0, 0}));
}

TEST(Aml, Strings) {
    EXPECT_EQ(string("AB"), (B{0x0d, 'A', 'B', 0}));
    EXPECT_THROW(string(std::string_view("A\0B", 3)), std::invalid_argument);
}

TEST(Aml, EisaId) {
    // EISAID("PNP0A03") is 0x030AD041, the PCI root bridge every DSDT has.
    EXPECT_EQ(eisa_id("PNP0A03"), (B{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
    EXPECT_EQ(eisa_id("PNP0501"), (B{0x0c, 0x41, 0xd0, 0x05, 0x01}));
    EXPECT_THROW(eisa_id("pnp0501"), std::invalid_argument);
    EXPECT_THROW(eisa_id("PNP050"), std::invalid_argument);
}

TEST(Aml, NameStrings) {
    EXPECT_EQ(name_string("_HID"), (B{'_', 'H', 'I', 'D'}));
    EXPECT_EQ(name_string("_S5"), (B{'_', 'S', '5', '_'}));
    EXPECT_EQ(name_string("\\_SB"), (B{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(name_string("\\_SB.COM1"), (B{'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
    EXPECT_EQ(name_string("\\A.B.C"), (B{'\\', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
    EXPECT_EQ(name_string("^^FOO"), (B{'^', '^', 'F', 'O', 'O', '_'}));
    EXPECT_EQ(name_string("\\"), (B{'\\', 0x00}));
    EXPECT_THROW(name_string("1ABC"), std::invalid_argument);
    EXPECT_THROW(name_string("ABCDE"), std::invalid_argument);
    EXPECT_THROW(name_string("ab"), std::invalid_argument);
    EXPECT_THROW(name_string("\\_SB."), std::invalid_argument);
}

TEST(Aml, NamePackageScopeDevice) {
    EXPECT_EQ(name("_UID", integer(0)), (B{0x08, '_', 'U', 'I', 'D', 0x00}));
    // Package(2) {1, 2}: opcode, PkgLength 5, NumElements, elements.
    EXPECT_EQ(package({integer(1), integer(2)}), (B{0x12, 0x05, 0x02, 0x01, 0x0a, 0x02}));
    // Device (DEV0) {}: ExtOp, DeviceOp, PkgLength 5 (itself + name).
    EXPECT_EQ(device("DEV0", {}), (B{0x5b, 0x82, 0x05, 'D', 'E', 'V', '0'}));
    EXPECT_EQ(scope("\\_SB", {}), (B{0x10, 0x06, '\\', '_', 'S', 'B', '_'}));
    // Method (FOO, 1, Serialized) { Return (One) }
    EXPECT_EQ(method("FOO", 1, true, return_value(integer(1))),
              (B{0x14, 0x08, 'F', 'O', 'O', '_', 0x09, 0xa4, 0x01}));
}

TEST(Aml, BufferLengthsAcrossPkgLengthWidths) {
    for (size_t n : {0u, 58u, 59u, 60u, 4000u, 4090u, 5000u, 1u << 20}) {
        const B data(n, 0x5a);
        const B b = buffer(data);
        ASSERT_EQ(b[0], 0x11);
        const size_t pl_bytes = (b[1] >> 6) + 1;
        uint32_t total = pl_bytes == 1 ? b[1] & 0x3f : b[1] & 0x0f;
        for (size_t i = 1; i < pl_bytes; ++i) total |= uint32_t(b[1 + i]) << (4 + 8 * (i - 1));
        EXPECT_EQ(total, b.size() - 1) << "data size " << n;  // everything after the opcode
        if (n > 0) {
            EXPECT_EQ(b.back(), 0x5a);
        }
    }
}

TEST(Aml, ResourceDescriptors) {
    EXPECT_EQ(io(0x3f8, 0x3f8, 1, 8), (B{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}));
    EXPECT_EQ(irq_no_flags(4), (B{0x22, 0x10, 0x00}));
    EXPECT_EQ(memory32_fixed(true, 0xd0000000, 0x1000),
              (B{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00}));
    // Consumer | Edge = 0x03; active-high, exclusive.
    EXPECT_EQ(interrupt(true, Trigger::Edge, Polarity::ActiveHigh, Sharing::Exclusive, {5}),
              (B{0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}));
    EXPECT_EQ(interrupt(true, Trigger::Level, Polarity::ActiveLow, Sharing::Shared, {16})[3], 0x0d);
}

TEST(Aml, ResourceTemplateEndsWithAValidChecksum) {
    const B rt = resource_template({io(0x60, 0x60, 1, 1), irq_no_flags(1)});
    // Buffer: opcode, PkgLength (1 byte here), BufferSize, then the data.
    ASSERT_EQ(rt[0], 0x11);
    const size_t data_at = 2 + (rt[2] == 0x0a ? 2 : 1);
    ASSERT_EQ(rt[2], 0x0a);
    EXPECT_EQ(rt[3], rt.size() - data_at);
    uint8_t sum = 0;
    for (size_t i = data_at; i < rt.size(); ++i) sum = uint8_t(sum + rt[i]);
    EXPECT_EQ(sum, 0);
    EXPECT_EQ(rt[rt.size() - 2], 0x79);
}

}  // namespace
}  // namespace vireo::aml
