// A 16550A UART, the PC's COM1: eight I/O ports, an interrupt line, output
// bytes to a host sink and input bytes queued from a host thread.
//
// Registered at (VIREO_SERIAL_COM1, Serial8250::kWindowSize) on the PIO bus;
// the interrupt line is ISA IRQ VIREO_SERIAL_IRQ (4), level semantics: the
// line is asserted while an enabled interrupt is pending.
//
// What the guest sees:
//  - Linux's 8250 driver detects a 16550A: IIR reports FIFOs enabled (bits
//    6-7), IER bits 4-7 and IIR bits 4-5 read 0, the scratch register keeps
//    its value, loopback mode routes MCR to MSR.
//  - Transmission is instantaneous: LSR.THRE and LSR.TEMT are always set, and
//    a write to THR leaves the THR-empty interrupt pending again at once.
//  - Received bytes raise the "received data available" interrupt as soon as
//    one byte waits (as if the trigger level were 1): we have no character
//    timing to emulate the FIFO timeout, and Linux treats both the same.
//  - The RX queue is larger than the chip's 16 bytes (rx_capacity, default
//    4 KiB) so a paste into the console is not lost while the guest is busy;
//    beyond it bytes are dropped, counted, logged and reported to the guest
//    as an overrun (LSR.OE), as a real UART would.
//
// Output is batched: bytes collect in a small buffer that is handed to the
// sink on a newline, when the buffer is full, on any register access other
// than a THR write or an LSR read (Linux's console and tty paths both end a
// burst with an IER write or an IIR read), and on flush(). The machine must
// call flush() once the vCPUs have stopped, while the sink's target (the
// console) still exists; the destructor does not flush, so that tearing
// down in any order can never call into a destroyed console.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/device.h"

namespace vireo {

class Serial8250 final : public Device {
public:
    using OutputSink = std::function<void(std::span<const uint8_t>)>;

    static constexpr uint64_t kWindowSize = 8;
    static constexpr size_t kDefaultRxCapacity = 4096;
    static constexpr size_t kTxBatch = 256;

    // `irq` and whatever `output` refers to must outlive every access and
    // flush(). `rx_capacity` (at least 1) bounds the input queue.
    Serial8250(std::string name, InterruptLine& irq, OutputSink output,
               size_t rx_capacity = kDefaultRxCapacity);
    ~Serial8250() override = default;
    Serial8250(const Serial8250&) = delete;
    Serial8250& operator=(const Serial8250&) = delete;

    std::string_view name() const override { return name_; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Host side (any thread): queues bytes for the guest. Returns how many
    // were accepted; the rest were dropped (counted in stats().rx_dropped).
    size_t receive(std::span<const uint8_t> bytes);
    // Hands any batched output to the sink now.
    void flush();

    struct Stats {
        uint64_t tx_bytes = 0;    // bytes the guest transmitted (incl. loopback)
        uint64_t rx_bytes = 0;    // bytes accepted into the RX queue
        uint64_t rx_dropped = 0;  // bytes lost because the RX queue was full
    };
    Stats stats() const;
    size_t rx_capacity() const { return rx_buf_.size(); }

private:
    bool write_register(uint64_t reg, uint8_t value);  // true: flush the TX batch
    uint8_t read_register(uint64_t reg);
    uint8_t pending_interrupt() const;  // IIR interrupt id, kIirNone if none
    uint8_t msr_lines() const;          // MSR bits 4-7 as the lines are now
    void update_irq();
    bool rx_push(uint8_t byte);
    void rx_clear();
    void flush_locked(std::unique_lock<std::mutex>& state_lock);
    void note_dropped(uint64_t dropped_now);

    const std::string name_;
    InterruptLine& irq_;
    OutputSink output_;

    // Guest-visible state, guarded by mutex_ (vCPU threads and the host
    // input thread both touch it).
    mutable std::mutex mutex_;
    uint8_t ier_ = 0;
    uint8_t lcr_ = 0;
    uint8_t mcr_ = 0;
    uint8_t scr_ = 0;
    uint8_t dll_ = 0x0c;  // 9600 baud until the guest programs it
    uint8_t dlm_ = 0;
    uint8_t msr_delta_ = 0;  // MSR bits 0-3
    bool fifo_enabled_ = false;
    bool overrun_ = false;       // LSR.OE, cleared by reading LSR
    bool thre_pending_ = false;  // THR-empty interrupt latched
    bool irq_level_ = false;     // what we last told irq_
    uint8_t last_rx_ = 0;        // RBR keeps the last byte when the queue is empty
    std::vector<uint8_t> rx_buf_;  // ring buffer, capacity fixed at construction
    size_t rx_head_ = 0;
    size_t rx_count_ = 0;
    std::vector<uint8_t> tx_;      // batch being collected
    Stats stats_;
    bool drop_logged_ = false;

    // Serialises calls into output_ so batches leave in order; taken while
    // mutex_ is still held (hand over hand), then mutex_ is released so the
    // sink's write never blocks the input thread.
    std::mutex sink_mutex_;
    std::vector<uint8_t> tx_out_;  // batch being written, guarded by sink_mutex_
};

}  // namespace vireo
