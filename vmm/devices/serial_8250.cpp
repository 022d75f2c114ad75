#include "vmm/devices/serial_8250.h"

#include <algorithm>
#include <utility>

#include "vmm/log.h"

namespace vireo {

namespace {

// Register offsets (16550A datasheet).
constexpr uint64_t kRbrThr = 0;  // DLL when LCR.DLAB
constexpr uint64_t kIer = 1;     // DLM when LCR.DLAB
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRda = 0x01;   // received data available
constexpr uint8_t kIerThre = 0x02;  // THR empty
constexpr uint8_t kIerRls = 0x04;   // receiver line status
constexpr uint8_t kIerMs = 0x08;    // modem status
constexpr uint8_t kIerMask = 0x0f;  // bits 4-7 do not exist on a 16550A

// IIR interrupt ids, highest priority first.
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirRls = 0x06;
constexpr uint8_t kIirRda = 0x04;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirMs = 0x00;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDr = 0x01;
constexpr uint8_t kLsrOe = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kMsrDcts = 0x01;
constexpr uint8_t kMsrDdsr = 0x02;
constexpr uint8_t kMsrTeri = 0x04;
constexpr uint8_t kMsrDdcd = 0x08;

}  // namespace

Serial8250::Serial8250(std::string name, InterruptLine& irq, OutputSink output, size_t rx_capacity)
    : name_(std::move(name)), irq_(irq), output_(std::move(output)), rx_buf_(std::max<size_t>(rx_capacity, 1)) {
    tx_.reserve(kTxBatch);
    tx_out_.reserve(kTxBatch);
}

uint8_t Serial8250::msr_lines() const {
    if (mcr_ & kMcrLoop) {
        // Loopback wiring: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        return ((mcr_ & kMcrRts) ? kMsrCts : 0) | ((mcr_ & kMcrDtr) ? kMsrDsr : 0) |
               ((mcr_ & kMcrOut1) ? kMsrRi : 0) | ((mcr_ & kMcrOut2) ? kMsrDcd : 0);
    }
    // A host that is always there: clear to send, data set ready, carrier.
    return kMsrCts | kMsrDsr | kMsrDcd;
}

uint8_t Serial8250::pending_interrupt() const {
    if ((ier_ & kIerRls) && overrun_) return kIirRls;
    if ((ier_ & kIerRda) && rx_count_ > 0) return kIirRda;
    if ((ier_ & kIerThre) && thre_pending_) return kIirThre;
    if ((ier_ & kIerMs) && (msr_delta_ & 0x0f)) return kIirMs;
    return kIirNone;
}

void Serial8250::update_irq() {
    // Called with mutex_ held, so the level we report always matches the
    // state the last change left behind, whichever thread made it.
    bool level = pending_interrupt() != kIirNone;
    if (level != irq_level_) {
        irq_level_ = level;
        irq_.set_level(level);
    }
}

bool Serial8250::rx_push(uint8_t byte) {
    if (rx_count_ == rx_buf_.size()) return false;
    rx_buf_[(rx_head_ + rx_count_) % rx_buf_.size()] = byte;
    ++rx_count_;
    return true;
}

void Serial8250::rx_clear() {
    rx_head_ = 0;
    rx_count_ = 0;
}

uint8_t Serial8250::read_register(uint64_t reg) {
    switch (reg) {
        case kRbrThr:
            if (lcr_ & kLcrDlab) return dll_;
            if (rx_count_ > 0) {
                last_rx_ = rx_buf_[rx_head_];
                rx_head_ = (rx_head_ + 1) % rx_buf_.size();
                --rx_count_;
            }
            return last_rx_;
        case kIer:
            return (lcr_ & kLcrDlab) ? dlm_ : ier_;
        case kIirFcr: {
            uint8_t id = pending_interrupt();
            // Reading IIR acknowledges a THR-empty interrupt when it is the
            // one reported (datasheet); the others clear at their source.
            if (id == kIirThre) thre_pending_ = false;
            return id | (fifo_enabled_ ? kIirFifoEnabled : 0);
        }
        case kLcr:
            return lcr_;
        case kMcr:
            return mcr_;
        case kLsr: {
            uint8_t lsr = kLsrThre | kLsrTemt | (rx_count_ > 0 ? kLsrDr : 0) | (overrun_ ? kLsrOe : 0);
            overrun_ = false;
            return lsr;
        }
        case kMsr: {
            uint8_t msr = msr_lines() | msr_delta_;
            msr_delta_ = 0;
            return msr;
        }
        case kScr:
            return scr_;
    }
    return 0xff;  // not reached: callers pass 0..7
}

bool Serial8250::write_register(uint64_t reg, uint8_t value) {
    switch (reg) {
        case kRbrThr:
            if (lcr_ & kLcrDlab) {
                dll_ = value;
                break;
            }
            ++stats_.tx_bytes;
            // The byte leaves at once: THR is empty again, and the THR-empty
            // interrupt (cleared by this write) is pending again.
            thre_pending_ = true;
            if (mcr_ & kMcrLoop) {
                if (rx_push(value)) {
                    ++stats_.rx_bytes;
                } else {
                    overrun_ = true;
                    ++stats_.rx_dropped;
                }
                return false;
            }
            tx_.push_back(value);
            return value == '\n' || tx_.size() >= kTxBatch;
        case kIer:
            if (lcr_ & kLcrDlab) {
                dlm_ = value;
                break;
            }
            // Enabling the THR-empty interrupt while THR is empty (it always
            // is) raises it again: Linux's start-up test and its tx path
            // rely on this 16550 behaviour.
            if ((value & kIerThre) && !(ier_ & kIerThre)) thre_pending_ = true;
            ier_ = value & kIerMask;
            break;
        case kIirFcr: {
            bool enable = value & kFcrEnable;
            // Changing the FIFO enable bit clears both FIFOs (datasheet);
            // the other bits only take effect with FCR0 set.
            if (enable != fifo_enabled_ || (enable && (value & kFcrClearRx))) rx_clear();
            fifo_enabled_ = enable;
            // Transmit-FIFO clear (bit 2) has nothing to drop: bytes leave
            // as they are written. Trigger level and DMA mode do not apply.
            break;
        }
        case kLcr:
            lcr_ = value;
            break;
        case kMcr: {
            uint8_t before = msr_lines();
            mcr_ = value & kMcrMask;
            uint8_t after = msr_lines();
            uint8_t changed = before ^ after;
            if (changed & kMsrCts) msr_delta_ |= kMsrDcts;
            if (changed & kMsrDsr) msr_delta_ |= kMsrDdsr;
            if ((before & kMsrRi) && !(after & kMsrRi)) msr_delta_ |= kMsrTeri;  // trailing edge only
            if (changed & kMsrDcd) msr_delta_ |= kMsrDdcd;
            break;
        }
        case kLsr:
        case kMsr:
            break;  // read-only (factory test mode is not emulated)
        case kScr:
            scr_ = value;
            break;
    }
    return !tx_.empty();  // any other register access ends a burst
}

void Serial8250::read(uint64_t offset, std::span<uint8_t> data) {
    std::unique_lock lock(mutex_);
    bool flush_now = false;
    // A wider access covers consecutive registers, as the ISA bus splits it
    // into byte cycles; bytes beyond our eight ports float high.
    for (size_t i = 0; i < data.size(); ++i) {
        if (offset < kWindowSize && i < kWindowSize - offset) {
            uint64_t reg = offset + i;
            data[i] = read_register(reg);
            if (reg != kLsr) flush_now = true;
        } else {
            data[i] = 0xff;
        }
    }
    update_irq();
    if (flush_now) flush_locked(lock);
}

void Serial8250::write(uint64_t offset, std::span<const uint8_t> data) {
    std::unique_lock lock(mutex_);
    bool flush_now = false;
    for (size_t i = 0; i < data.size(); ++i) {
        if (offset < kWindowSize && i < kWindowSize - offset) flush_now |= write_register(offset + i, data[i]);
    }
    update_irq();
    if (flush_now) flush_locked(lock);
}

void Serial8250::flush_locked(std::unique_lock<std::mutex>& state_lock) {
    if (tx_.empty()) return;
    std::unique_lock sink_lock(sink_mutex_);
    tx_.swap(tx_out_);  // tx_out_ was emptied by the previous flush
    state_lock.unlock();
    if (output_) output_(tx_out_);
    tx_out_.clear();
}

void Serial8250::flush() {
    std::unique_lock lock(mutex_);
    flush_locked(lock);
}

size_t Serial8250::receive(std::span<const uint8_t> bytes) {
    size_t accepted = 0;
    uint64_t dropped_now = 0;
    {
        std::lock_guard lock(mutex_);
        for (uint8_t b : bytes) {
            if (!rx_push(b)) break;
            ++accepted;
        }
        dropped_now = bytes.size() - accepted;
        stats_.rx_bytes += accepted;
        if (dropped_now > 0) {
            stats_.rx_dropped += dropped_now;
            overrun_ = true;
        }
        update_irq();
    }
    if (dropped_now > 0) note_dropped(dropped_now);
    return accepted;
}

void Serial8250::note_dropped(uint64_t dropped_now) {
    bool first = false;
    {
        std::lock_guard lock(mutex_);
        first = !std::exchange(drop_logged_, true);
    }
    if (first)
        log_warn("{}: guest is not reading its input: RX queue full ({} bytes), dropped {} byte(s); "
                 "further drops are counted (rx_dropped), not logged",
                 name_, rx_buf_.size(), dropped_now);
}

Serial8250::Stats Serial8250::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace vireo
