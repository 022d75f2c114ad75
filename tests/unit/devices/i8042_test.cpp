#include "vmm/devices/i8042.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using test::FakeInterruptLine;
using test::FakeStopSink;
using test::read8;
using test::read_n;
using test::write8;
using test::write_n;

constexpr uint64_t DATA = I8042::kDataOffset, CMD = I8042::kCommandOffset;
constexpr uint8_t OBF = 0x01, SYS = 0x04, A2 = 0x08, AUX = 0x20, TIMEOUT = 0x40;

struct Kbc {
    FakeStopSink stop;
    FakeInterruptLine kbd, aux;
    I8042 dev{stop, &kbd, &aux};
    // What Linux's i8042_command does: command, optional data, read reply.
    uint8_t command(uint8_t cmd) {
        write8(dev, CMD, cmd);
        EXPECT_TRUE(read8(dev, CMD) & OBF) << "no reply to " << int(cmd);
        return read8(dev, DATA);
    }
};

TEST(I8042, SelfTestAndInterfaceTestsPass) {
    Kbc k;
    EXPECT_EQ(read8(k.dev, CMD) & OBF, 0);  // nothing to read at power-on
    EXPECT_EQ(k.command(0xaa), 0x55);
    EXPECT_EQ(read8(k.dev, CMD) & OBF, 0);
    EXPECT_EQ(k.command(0xab), 0x00);
    EXPECT_EQ(k.command(0xa9), 0x00);
    EXPECT_TRUE(k.stop.requests().empty());
}

TEST(I8042, StatusRegister) {
    Kbc k;
    uint8_t s = read8(k.dev, CMD);
    EXPECT_TRUE(s & 0x10);  // keyboard not inhibited (Linux warns on "keylock")
    EXPECT_TRUE(s & SYS);   // POST passed
    EXPECT_EQ(s & 0x02, 0); // input buffer never full: commands complete at once
    write8(k.dev, CMD, 0xa7);
    EXPECT_TRUE(read8(k.dev, CMD) & A2);
    write8(k.dev, DATA, 0x00);  // to the absent keyboard
    EXPECT_FALSE(read8(k.dev, CMD) & A2);
}

TEST(I8042, ConfigByteReadAndWrite) {
    Kbc k;
    EXPECT_EQ(k.command(0x20), 0x45);
    EXPECT_EQ(k.dev.config_byte(), 0x45);
    write8(k.dev, CMD, 0x60);
    write8(k.dev, DATA, 0x47);
    EXPECT_EQ(k.command(0x20), 0x47);
    // Clearing the system flag shows in the status register.
    write8(k.dev, CMD, 0x60);
    write8(k.dev, DATA, 0x43);
    EXPECT_EQ(read8(k.dev, CMD) & SYS, 0);
    // The rest of the controller RAM is plain storage.
    write8(k.dev, CMD, 0x61);
    write8(k.dev, DATA, 0x99);
    EXPECT_EQ(k.command(0x21), 0x99);
    EXPECT_EQ(k.command(0x20), 0x43);
}

TEST(I8042, DisableAndEnablePorts) {
    Kbc k;
    write8(k.dev, CMD, 0xad);
    EXPECT_EQ(k.command(0x20) & 0x10, 0x10);
    write8(k.dev, CMD, 0xae);
    EXPECT_EQ(k.command(0x20) & 0x10, 0);
    write8(k.dev, CMD, 0xa7);
    EXPECT_EQ(k.command(0x20) & 0x20, 0x20);
    write8(k.dev, CMD, 0xa8);
    EXPECT_EQ(k.command(0x20) & 0x20, 0);
}

TEST(I8042, PulseResetLineRequestsReset) {
    Kbc k;
    write8(k.dev, CMD, 0xfe);
    auto r = k.stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::Reset);
    EXPECT_NE(r[0].detail.find("0xfe"), std::string::npos);
}

TEST(I8042, PulsingOtherLinesDoesNotReset) {
    Kbc k;
    write8(k.dev, CMD, 0xff);  // pulses nothing
    write8(k.dev, CMD, 0xfd);  // pulses bit 1 (A20), not the reset line
    EXPECT_TRUE(k.stop.requests().empty());
}

TEST(I8042, OutputPortWriteWithResetBitClearResets) {
    Kbc k;
    write8(k.dev, CMD, 0xd1);
    write8(k.dev, DATA, 0xdf);  // A20 on, reset line high: the usual write
    EXPECT_TRUE(k.stop.requests().empty());
    EXPECT_EQ(k.command(0xd0) & 0x03, 0x03);
    write8(k.dev, CMD, 0xd1);
    write8(k.dev, DATA, 0xde);
    auto r = k.stop.requests();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reason, StopReason::Reset);
}

TEST(I8042, AuxLoopRaisesAuxInterrupt) {
    Kbc k;
    write8(k.dev, CMD, 0x60);
    write8(k.dev, DATA, 0x47);  // AUX interrupt on
    write8(k.dev, CMD, 0xd3);
    write8(k.dev, DATA, 0x5a);
    EXPECT_EQ(read8(k.dev, CMD) & (OBF | AUX), OBF | AUX);
    EXPECT_TRUE(k.aux.level());
    EXPECT_FALSE(k.kbd.level());
    EXPECT_EQ(read8(k.dev, DATA), 0x5a);
    EXPECT_FALSE(k.aux.level());
}

TEST(I8042, KeyboardBytesRaiseKeyboardInterruptWhenEnabled) {
    Kbc k;
    write8(k.dev, CMD, 0xd2);
    write8(k.dev, DATA, 0x1c);
    EXPECT_TRUE(k.kbd.level());
    EXPECT_EQ(read8(k.dev, DATA), 0x1c);
    EXPECT_FALSE(k.kbd.level());
    write8(k.dev, CMD, 0x60);
    write8(k.dev, DATA, 0x44);  // keyboard interrupt off
    write8(k.dev, CMD, 0xd2);
    write8(k.dev, DATA, 0x1c);
    EXPECT_FALSE(k.kbd.level());
    EXPECT_TRUE(read8(k.dev, CMD) & OBF);
}

TEST(I8042, AbsentDevicesAnswerAtOnce) {
    Kbc k;
    write8(k.dev, DATA, 0xf2);  // keyboard: identify
    uint8_t s = read8(k.dev, CMD);
    EXPECT_EQ(s & (OBF | TIMEOUT | AUX), OBF | TIMEOUT);
    EXPECT_EQ(read8(k.dev, DATA), 0xfe);
    EXPECT_EQ(read8(k.dev, CMD) & TIMEOUT, 0);
    write8(k.dev, CMD, 0xd4);  // to the mouse
    write8(k.dev, DATA, 0xff);
    EXPECT_EQ(read8(k.dev, CMD) & (OBF | TIMEOUT | AUX), OBF | TIMEOUT | AUX);
    EXPECT_EQ(read8(k.dev, DATA), 0xfe);
}

TEST(I8042, WorksWithoutInterruptLines) {
    FakeStopSink stop;
    I8042 dev(stop);
    write8(dev, CMD, 0xaa);
    EXPECT_EQ(read8(dev, DATA), 0x55);
    write8(dev, CMD, 0xd3);
    write8(dev, DATA, 1);
    EXPECT_EQ(read8(dev, DATA), 1);
}

TEST(I8042, AnyAccessIsSafe) {
    Kbc k;
    for (uint64_t off = 1; off < 4; ++off) {
        EXPECT_EQ(read8(k.dev, off), 0xff);
        write8(k.dev, off, 0xfe);  // not the command port: no reset
    }
    EXPECT_TRUE(k.stop.requests().empty());
    EXPECT_EQ(read_n(k.dev, 1000, 4), 0xffffffffu);
    write_n(k.dev, ~uint64_t{0}, 0xfefefefe, 4);
    EXPECT_TRUE(k.stop.requests().empty());
    // A command flood without reads: bounded and counted.
    for (int i = 0; i < 100; ++i) write8(k.dev, CMD, 0xaa);
    EXPECT_EQ(k.dev.output_dropped(), 100u - 16u);
    int drained = 0;
    while (read8(k.dev, CMD) & OBF) {
        EXPECT_EQ(read8(k.dev, DATA), 0x55);
        ++drained;
    }
    EXPECT_EQ(drained, 16);
    // A 16-bit write at 0x60 touches 0x60 and 0x61 only.
    write_n(k.dev, DATA, 0xfeaa, 2);
    EXPECT_TRUE(k.stop.requests().empty());
}

}  // namespace
}  // namespace vireo
