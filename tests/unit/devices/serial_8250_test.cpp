#include "vmm/devices/serial_8250.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using test::FakeInterruptLine;
using test::read8;
using test::read_n;
using test::write8;
using test::write_n;

constexpr uint64_t RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5,
                   MSR = 6, SCR = 7;

struct Uart {
    explicit Uart(size_t rx_capacity = Serial8250::kDefaultRxCapacity)
        : uart("com1", irq, [this](std::span<const uint8_t> b) { batches.emplace_back(b.begin(), b.end()); },
               rx_capacity) {}
    std::string output() const {
        std::string all;
        for (auto& b : batches) all += b;
        return all;
    }
    void put(std::string_view s) {
        for (char c : s) write8(uart, THR, uint8_t(c));
    }
    size_t receive(std::string_view s) {
        return uart.receive(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    }
    FakeInterruptLine irq;
    std::vector<std::string> batches;
    Serial8250 uart;
};

// The probe Linux's 8250 driver (autoconfig) runs on a port, step by step;
// each check is what makes it settle on PORT_16550A rather than something else.
TEST(Serial8250, DetectedAs16550AByLinuxProbe) {
    Uart u;
    Device& d = u.uart;
    // IER existence test: bits 0-3 writable, reads back.
    uint8_t saved_ier = read8(d, IER);
    write8(d, IER, 0);
    EXPECT_EQ(read8(d, IER) & 0x0f, 0);
    write8(d, IER, 0x0f);
    EXPECT_EQ(read8(d, IER) & 0x0f, 0x0f);
    write8(d, IER, saved_ier);

    // Loopback test: MCR = LOOP | OUT2 | RTS must show CTS and DCD in MSR.
    uint8_t save_mcr = read8(d, MCR);
    write8(d, MCR, 0x10 | 0x0a);
    EXPECT_EQ(read8(d, MSR) & 0xf0, 0x90);
    write8(d, MCR, save_mcr);

    // FIFO test: with FIFOs enabled IIR bits 6-7 are 11 (16550A).
    write8(d, LCR, 0xbf);
    write8(d, FCR, 0);  // EFR on an enhanced UART; FCR here
    write8(d, LCR, 0);
    write8(d, FCR, 0x01);
    EXPECT_EQ(read8(d, IIR) >> 6, 3);

    // No EFR: offset 2 under LCR 0x80 and 0xbf reads IIR, which is non-zero.
    write8(d, LCR, 0x80);
    EXPECT_NE(read8(d, IIR), 0);
    write8(d, LCR, 0xbf);
    EXPECT_NE(read8(d, IIR), 0);

    // Not a National SuperIO: "EXCR1" (offset 2 under LCR 0xe0) does not
    // follow MCR's loop bit.
    write8(d, LCR, 0);
    uint8_t mcr = read8(d, MCR);
    write8(d, LCR, 0xe0);
    uint8_t excr1 = read8(d, IIR);
    EXPECT_EQ((excr1 ^ mcr) & 0x10, 0);
    write8(d, LCR, 0);
    write8(d, MCR, mcr ^ 0x10);
    write8(d, LCR, 0xe0);
    excr1 = read8(d, IIR);
    write8(d, LCR, 0);
    write8(d, MCR, mcr);
    EXPECT_EQ((excr1 ^ mcr) & 0x10, 0);

    // Not a 16750: IIR bit 5 never set by FCR bit 5, with or without DLAB.
    write8(d, FCR, 0x01 | 0x20);
    EXPECT_EQ(read8(d, IIR) >> 5, 6);
    write8(d, FCR, 0x01);
    write8(d, LCR, 0x80);
    write8(d, FCR, 0x01 | 0x20);
    EXPECT_EQ(read8(d, IIR) >> 5, 6);
    write8(d, FCR, 0x01);
    write8(d, LCR, 0);

    // Not an XScale: IER bit 6 (UUE) does not stick.
    write8(d, IER, 0x40);
    EXPECT_EQ(read8(d, IER) & 0x40, 0);
    write8(d, IER, 0);

    // The scratch register keeps what is written (the 8250/16450 test).
    write8(d, SCR, 0xa5);
    EXPECT_EQ(read8(d, SCR), 0xa5);
    write8(d, SCR, 0x5a);
    EXPECT_EQ(read8(d, SCR), 0x5a);

    // Start-up sanity: LSR is not 0xff (Linux refuses such a port).
    EXPECT_NE(read8(d, LSR), 0xff);
}

TEST(Serial8250, DlabSelectsTheDivisorLatch) {
    Uart u;
    write8(u.uart, IER, 0x05);
    write8(u.uart, LCR, 0x83);
    write8(u.uart, DLL, 0x01);
    write8(u.uart, DLM, 0x00);
    EXPECT_EQ(read8(u.uart, DLL), 0x01);
    EXPECT_EQ(read8(u.uart, DLM), 0x00);
    EXPECT_EQ(read8(u.uart, LCR), 0x83);
    write8(u.uart, LCR, 0x03);
    EXPECT_EQ(read8(u.uart, IER), 0x05);  // untouched by the divisor writes
    EXPECT_TRUE(u.output().empty());      // a DLL write is not a transmitted byte
    write8(u.uart, LCR, 0x83);
    EXPECT_EQ(read8(u.uart, DLL), 0x01);
}

TEST(Serial8250, LsrShowsTransmitterEmptyAndDataReady) {
    Uart u;
    EXPECT_EQ(read8(u.uart, LSR), 0x60);  // THRE | TEMT, no data
    u.put("a");
    EXPECT_EQ(read8(u.uart, LSR) & 0x60, 0x60);  // transmission is instantaneous
    u.receive("q");
    EXPECT_EQ(read8(u.uart, LSR), 0x61);
    EXPECT_EQ(read8(u.uart, RBR), 'q');
    EXPECT_EQ(read8(u.uart, LSR), 0x60);
    EXPECT_EQ(read8(u.uart, RBR), 'q');  // an empty RBR keeps the last byte
}

TEST(Serial8250, OutputIsBatchedPerLineAndFlushed) {
    Uart u;
    // The polled console pattern: LSR read, THR write, per byte.
    for (char c : std::string("hello\nwor")) {
        ASSERT_TRUE(read8(u.uart, LSR) & 0x20);
        write8(u.uart, THR, uint8_t(c));
    }
    ASSERT_EQ(u.batches.size(), 1u);
    EXPECT_EQ(u.batches[0], "hello\n");
    write8(u.uart, IER, 0);  // the end of a console write: IER restored
    ASSERT_EQ(u.batches.size(), 2u);
    EXPECT_EQ(u.batches[1], "wor");
    u.put("ld");
    u.uart.flush();
    EXPECT_EQ(u.output(), "hello\nworld");
    EXPECT_EQ(u.uart.stats().tx_bytes, 11u);
}

TEST(Serial8250, LongOutputWithoutNewlineIsFlushedWhenTheBatchIsFull) {
    Uart u;
    u.put(std::string(Serial8250::kTxBatch + 10, 'x'));
    ASSERT_EQ(u.batches.size(), 1u);
    EXPECT_EQ(u.batches[0].size(), Serial8250::kTxBatch);
}

TEST(Serial8250, IirReportsInterruptsByPriority) {
    Uart u(4);
    write8(u.uart, FCR, 0x01);
    write8(u.uart, IER, 0x0f);  // all four sources; THRE latches now
    write8(u.uart, MCR, 0x10);  // loopback on: the modem lines change
    write8(u.uart, MCR, 0x00);
    EXPECT_EQ(u.receive("abcdef"), 4u);  // overrun: line status pending

    EXPECT_EQ(read8(u.uart, IIR), 0xc6);  // line status first
    EXPECT_TRUE(read8(u.uart, LSR) & 0x02);
    EXPECT_EQ(read8(u.uart, IIR), 0xc4);  // then received data
    for (int i = 0; i < 4; ++i) read8(u.uart, RBR);
    EXPECT_EQ(read8(u.uart, IIR), 0xc2);  // then THR empty (this read acknowledges it)
    EXPECT_EQ(read8(u.uart, IIR), 0xc0);  // then modem status
    read8(u.uart, MSR);
    EXPECT_EQ(read8(u.uart, IIR), 0xc1);  // nothing pending
    EXPECT_FALSE(u.irq.level());
}

TEST(Serial8250, IirWithoutFifosHasNoFifoBits) {
    Uart u;
    EXPECT_EQ(read8(u.uart, IIR), 0x01);
    write8(u.uart, FCR, 0x01);
    EXPECT_EQ(read8(u.uart, IIR), 0xc1);
    write8(u.uart, FCR, 0x00);
    EXPECT_EQ(read8(u.uart, IIR), 0x01);
}

TEST(Serial8250, RxDataInterruptFollowsTheQueue) {
    Uart u;
    u.receive("x");
    EXPECT_EQ(u.irq.changes(), 0u);  // not enabled: the line never moved
    write8(u.uart, IER, 0x01);
    EXPECT_TRUE(u.irq.level());
    u.receive("y");
    EXPECT_EQ(read8(u.uart, RBR), 'x');
    EXPECT_TRUE(u.irq.level());  // still one byte waiting
    EXPECT_EQ(read8(u.uart, RBR), 'y');
    EXPECT_FALSE(u.irq.level());
    EXPECT_EQ(u.irq.levels(), (std::vector<bool>{true, false}));  // one assert, one deassert
}

// Linux's start-up THRE test and its tx path: enabling THRI while THR is
// empty must raise the interrupt again even after it was acknowledged.
TEST(Serial8250, ThrEmptyInterruptRefiresWhenReenabled) {
    Uart u;
    write8(u.uart, IER, 0x02);
    EXPECT_TRUE(u.irq.level());
    uint8_t iir1 = read8(u.uart, IIR);
    EXPECT_EQ(iir1 & 0x0f, 0x02);
    EXPECT_FALSE(u.irq.level());  // acknowledged by the IIR read
    write8(u.uart, IER, 0x00);
    write8(u.uart, IER, 0x02);
    EXPECT_TRUE(u.irq.level());
    uint8_t iir = read8(u.uart, IIR);
    EXPECT_EQ(iir & 0x01, 0);  // pending: Linux does not set UART_BUG_THRE
    write8(u.uart, IER, 0x00);
    EXPECT_FALSE(u.irq.level());

    // Interrupt-driven transmit: each THR write leaves THRE pending again.
    write8(u.uart, IER, 0x02);
    read8(u.uart, IIR);
    EXPECT_FALSE(u.irq.level());
    u.put("z");
    EXPECT_TRUE(u.irq.level());
}

TEST(Serial8250, RxQueueIsBoundedAndOverflowCounted) {
    Uart u(8);
    EXPECT_EQ(u.uart.rx_capacity(), 8u);
    EXPECT_EQ(u.receive("0123456789AB"), 8u);
    auto st = u.uart.stats();
    EXPECT_EQ(st.rx_bytes, 8u);
    EXPECT_EQ(st.rx_dropped, 4u);
    EXPECT_EQ(read8(u.uart, LSR) & 0x03, 0x03);  // DR and OE
    EXPECT_EQ(read8(u.uart, LSR) & 0x02, 0);     // OE clears on read
    std::string got;
    while (read8(u.uart, LSR) & 1) got += char(read8(u.uart, RBR));
    EXPECT_EQ(got, "01234567");
    EXPECT_EQ(u.receive("xy"), 2u);  // room again
    EXPECT_EQ(u.uart.stats().rx_dropped, 4u);
}

TEST(Serial8250, FcrClearsTheReceiveFifo) {
    Uart u;
    write8(u.uart, FCR, 0x01);
    u.receive("abc");
    write8(u.uart, FCR, 0x03);
    EXPECT_EQ(read8(u.uart, LSR) & 1, 0);
}

TEST(Serial8250, LoopbackRoutesThrToRbrAndMcrToMsr) {
    Uart u;
    write8(u.uart, MCR, 0x10);
    u.put("L");
    u.uart.flush();
    EXPECT_TRUE(u.output().empty());
    EXPECT_EQ(read8(u.uart, LSR) & 1, 1);
    EXPECT_EQ(read8(u.uart, RBR), 'L');
    write8(u.uart, MCR, 0x10 | 0x01 | 0x04);  // DTR, OUT1
    EXPECT_EQ(read8(u.uart, MSR) & 0xf0, 0x20 | 0x40);  // DSR, RI
    write8(u.uart, MCR, 0x10);
    EXPECT_EQ(read8(u.uart, MSR), 0x02 | 0x04);  // DDSR, TERI (RI fell); no lines
    write8(u.uart, MCR, 0x00);
    EXPECT_EQ(read8(u.uart, MSR) & 0xf0, 0xb0);  // back to CTS, DSR, DCD
    u.put("o");
    u.uart.flush();
    EXPECT_EQ(u.output(), "o");
}

TEST(Serial8250, AnyAccessIsSafe) {
    Uart u;
    // Wide accesses span consecutive registers, bytes past the window float.
    write_n(u.uart, LCR, 0x0b03, 2);  // LCR = 3, MCR = 0x0b
    EXPECT_EQ(read8(u.uart, MCR), 0x0b);
    EXPECT_EQ(read_n(u.uart, SCR, 4) >> 8, 0xffffffu);
    EXPECT_EQ(read_n(u.uart, 100, 8), ~uint64_t{0});
    write_n(u.uart, 100, ~uint64_t{0}, 8);
    write_n(u.uart, ~uint64_t{0}, 1, 4);
    EXPECT_EQ(read_n(u.uart, ~uint64_t{0}, 2), 0xffffu);
    uint8_t big[64] = {};
    u.uart.read(0, std::span<uint8_t>(big, sizeof big));
    EXPECT_EQ(big[63], 0xff);
    u.uart.write(0, std::span<const uint8_t>());
    write_n(u.uart, LSR, 0, 2);  // LSR and MSR are read-only
    EXPECT_EQ(read8(u.uart, LSR) & 0x60, 0x60);
}

TEST(Serial8250, ReceiveFromAnotherThread) {
    Uart u(64);
    write8(u.uart, IER, 0x01);
    constexpr int kBytes = 2000;
    std::thread host([&] {
        for (int sent = 0; sent < kBytes;) {
            uint8_t b = uint8_t(sent);
            size_t n = u.uart.receive(std::span<const uint8_t>(&b, 1));
            sent += int(n);
            if (n == 0) std::this_thread::yield();
        }
    });
    int got = 0;
    while (got < kBytes) {
        if (read8(u.uart, LSR) & 1) {
            EXPECT_EQ(read8(u.uart, RBR), uint8_t(got));
            ++got;
        }
    }
    host.join();
    EXPECT_EQ(u.uart.stats().rx_bytes, uint64_t(kBytes));
    EXPECT_FALSE(u.irq.level());
}

}  // namespace
}  // namespace vireo
