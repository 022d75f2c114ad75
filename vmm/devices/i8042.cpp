#include "vmm/devices/i8042.h"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>

#include "vmm/log.h"

namespace vireo {

namespace {

// Status register (port 0x64, read).
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystem = 0x04;     // mirrors the config byte's system flag
constexpr uint8_t kStatusCommand = 0x08;    // last write went to port 0x64
constexpr uint8_t kStatusUnlocked = 0x10;   // keyboard lock switch: not inhibited
constexpr uint8_t kStatusAuxData = 0x20;    // the output byte came from the AUX port
constexpr uint8_t kStatusTimeout = 0x40;

// Configuration ("command") byte.
constexpr uint8_t kConfigKbdInt = 0x01;
constexpr uint8_t kConfigAuxInt = 0x02;
constexpr uint8_t kConfigSystem = 0x04;
constexpr uint8_t kConfigKbdDisabled = 0x10;
constexpr uint8_t kConfigAuxDisabled = 0x20;
constexpr uint8_t kConfigTranslate = 0x40;
// What a PC BIOS leaves behind: translation on, POST passed, keyboard
// interrupt on, AUX interrupt off until the OS enables it.
constexpr uint8_t kConfigDefault = kConfigTranslate | kConfigSystem | kConfigKbdInt;

// Output port: bit 0 is the CPU reset line (active low), bit 1 the A20 gate;
// bits 4 and 5 reflect the output-buffer-full flags when read.
constexpr uint8_t kOutputPortReset = 0x01;
constexpr uint8_t kOutputPortA20 = 0x02;
constexpr uint8_t kOutputPortKbdFull = 0x10;
constexpr uint8_t kOutputPortAuxFull = 0x20;

// Controller commands.
constexpr uint8_t kCmdReadRam = 0x20;   // 0x20-0x3f
constexpr uint8_t kCmdWriteRam = 0x60;  // 0x60-0x7f, data byte follows
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKbd = 0xab;
constexpr uint8_t kCmdDisableKbd = 0xad;
constexpr uint8_t kCmdEnableKbd = 0xae;
constexpr uint8_t kCmdReadInputPort = 0xc0;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKbdBuffer = 0xd2;
constexpr uint8_t kCmdWriteAuxBuffer = 0xd3;  // "AUX loop"
constexpr uint8_t kCmdWriteAux = 0xd4;
constexpr uint8_t kCmdReadTestInputs = 0xe0;
constexpr uint8_t kCmdPulseFirst = 0xf0;  // 0xf0-0xff: pulse output port bits 0-3 whose command bit is 0

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;
constexpr uint8_t kNoDevice = 0xfe;  // what the guest gets for a byte sent to an absent device

}  // namespace

I8042::I8042(StopSink& stop, InterruptLine* kbd_irq, InterruptLine* aux_irq)
    : stop_(stop), kbd_irq_(kbd_irq), aux_irq_(aux_irq), output_port_(kOutputPortReset | kOutputPortA20) {
    ram_[0] = kConfigDefault;
}

uint8_t I8042::config_byte() const {
    std::lock_guard lock(mutex_);
    return ram_[0];
}

uint64_t I8042::output_dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void I8042::push(uint8_t value, Source source, bool timeout) {
    if (queue_count_ == kQueueSize) {
        // Only a guest that keeps issuing commands without reading gets
        // here; the controller proper has a one-byte buffer anyway.
        if (dropped_++ == 0) log_warn("i8042: output buffer full, guest is not reading; dropping bytes (counted)");
        return;
    }
    queue_[(queue_head_ + queue_count_) % kQueueSize] = OutputByte{value, source, timeout};
    ++queue_count_;
}

uint8_t I8042::read_status() const {
    uint8_t s = kStatusUnlocked | (ram_[0] & kConfigSystem ? kStatusSystem : 0) |
                (last_write_was_command_ ? kStatusCommand : 0);
    if (queue_count_ > 0) {
        const OutputByte& b = queue_[queue_head_];
        s |= kStatusOutputFull;
        if (b.source == Source::Aux) s |= kStatusAuxData;
        if (b.timeout) s |= kStatusTimeout;
    }
    return s;
}

uint8_t I8042::read_data() {
    if (queue_count_ > 0) {
        last_read_ = queue_[queue_head_].value;
        queue_head_ = (queue_head_ + 1) % kQueueSize;
        --queue_count_;
    }
    return last_read_;  // an empty buffer still shows the last byte
}

void I8042::update_irqs() {
    bool kbd = false, aux = false;
    if (queue_count_ > 0) {
        if (queue_[queue_head_].source == Source::Aux)
            aux = ram_[0] & kConfigAuxInt;
        else
            kbd = ram_[0] & kConfigKbdInt;
    }
    if (kbd_irq_ && kbd != kbd_level_) kbd_irq_->set_level(kbd);
    if (aux_irq_ && aux != aux_level_) aux_irq_->set_level(aux);
    kbd_level_ = kbd;
    aux_level_ = aux;
}

void I8042::write_data(uint8_t value) {
    uint8_t command = std::exchange(pending_command_, 0);
    if (command >= kCmdWriteRam && command < kCmdWriteRam + 0x20) {
        ram_[command & 0x1f] = value;
        return;
    }
    switch (command) {
        case kCmdWriteOutputPort:
            output_port_ = value & ~(kOutputPortKbdFull | kOutputPortAuxFull);
            return;
        case kCmdWriteKbdBuffer:
            push(value, Source::Keyboard);
            return;
        case kCmdWriteAuxBuffer:
            push(value, Source::Aux);
            return;
        case kCmdWriteAux:
            push(kNoDevice, Source::Aux, true);
            return;
        default:
            // A plain data write is a byte for the keyboard, which is absent.
            push(kNoDevice, Source::Keyboard, true);
            return;
    }
}

void I8042::write_command(uint8_t command) {
    pending_command_ = 0;
    if (command >= kCmdReadRam && command < kCmdReadRam + 0x20) {
        push(ram_[command & 0x1f], Source::Controller);
        return;
    }
    if (command >= kCmdWriteRam && command < kCmdWriteRam + 0x20) {
        pending_command_ = command;
        return;
    }
    switch (command) {
        case kCmdDisableAux: ram_[0] |= kConfigAuxDisabled; return;
        case kCmdEnableAux: ram_[0] &= ~kConfigAuxDisabled; return;
        case kCmdTestAux: push(kInterfaceOk, Source::Controller); return;
        case kCmdSelfTest: push(kSelfTestPassed, Source::Controller); return;
        case kCmdTestKbd: push(kInterfaceOk, Source::Controller); return;
        case kCmdDisableKbd: ram_[0] |= kConfigKbdDisabled; return;
        case kCmdEnableKbd: ram_[0] &= ~kConfigKbdDisabled; return;
        case kCmdReadInputPort: push(0x80, Source::Controller); return;  // bit 7: keyboard not inhibited
        case kCmdReadOutputPort: {
            uint8_t v = output_port_;
            if (queue_count_ > 0)
                v |= queue_[queue_head_].source == Source::Aux ? kOutputPortAuxFull : kOutputPortKbdFull;
            push(v, Source::Controller);
            return;
        }
        case kCmdWriteOutputPort:
        case kCmdWriteKbdBuffer:
        case kCmdWriteAuxBuffer:
        case kCmdWriteAux: pending_command_ = command; return;
        case kCmdReadTestInputs: push(0x00, Source::Controller); return;
        default: return;  // unknown commands are ignored, as the chip does
    }
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    // Each byte of a wider access is its own port; only 0x60 and 0x64 are ours.
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
        if (port == kDataOffset)
            data[i] = read_data();
        else if (port == kCommandOffset)
            data[i] = read_status();
        else
            data[i] = 0xff;
    }
    update_irqs();
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    std::optional<std::string> reset_detail;
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < data.size(); ++i) {
            uint64_t port = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
            uint8_t v = data[i];
            if (port == kDataOffset) {
                bool output_port_write = pending_command_ == kCmdWriteOutputPort;
                last_write_was_command_ = false;
                write_data(v);
                if (output_port_write && !(v & kOutputPortReset) && !reset_detail)
                    reset_detail = fmt::format("i8042: guest cleared the reset bit of the output port (0xd1, {:#04x})", v);
            } else if (port == kCommandOffset) {
                last_write_was_command_ = true;
                // 0xf0-0xff pulse the output-port bits whose command bit is
                // 0; bit 0 is the reset line, so 0xfe (and any even one)
                // resets the machine.
                if (v >= kCmdPulseFirst && !(v & kOutputPortReset)) {
                    if (!reset_detail) reset_detail = fmt::format("i8042: guest pulsed the reset line (command {:#04x})", v);
                } else {
                    write_command(v);
                }
            }
        }
        update_irqs();
    }
    // Outside the lock: the stop sink logs and wakes other threads.
    if (reset_detail) stop_.request_stop({StopReason::Reset, 0, std::move(*reset_detail)});
}

}  // namespace vireo
