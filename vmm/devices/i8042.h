// The PC keyboard controller (Intel 8042), as much of it as an OS probes,
// and its reset line — the classic way an x86 guest reboots (Linux
// reboot=k, and the fallback after ACPI reset).
//
// Registered as ONE window (I8042::kBase = 0x60, I8042::kWindowSize = 5):
// offset 0 is the data port (0x60), offset 4 the status/command port
// (0x64). Offsets 1-3 are not the controller's: reads give 0xff, writes are
// ignored. (Port 0x61, the speaker/NMI port, is handled inside KVM when the
// in-kernel PIT exists, so claiming the window does not hide it.)
//
// No keyboard and no mouse are attached: a byte sent to either device is
// answered at once with 0xfe and the status register's time-out bit, so
// the guest's drivers give up quickly instead of waiting for timeouts.
//
// Interrupts (both optional, level: asserted while the output buffer holds
// a byte for that source and the config byte enables it): `kbd_irq` is ISA
// IRQ 1, `aux_irq` ISA IRQ 12. Linux's probe of the AUX port checks that
// IRQ 12 arrives and waits 250 ms if it does not: wire `aux_irq`, or boot
// with i8042.noaux, or leave the 8042 flag out of the FADT so Linux does
// not probe the controller at all.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class I8042 final : public Device {
public:
    static constexpr uint64_t kBase = 0x60;
    static constexpr uint64_t kWindowSize = 5;
    static constexpr uint64_t kDataOffset = 0;
    static constexpr uint64_t kCommandOffset = 4;

    explicit I8042(StopSink& stop, InterruptLine* kbd_irq = nullptr, InterruptLine* aux_irq = nullptr);

    std::string_view name() const override { return "i8042"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint8_t config_byte() const;
    // Bytes the guest never read before the (bounded) output queue filled.
    uint64_t output_dropped() const;

private:
    enum class Source : uint8_t { Controller, Keyboard, Aux };
    struct OutputByte {
        uint8_t value;
        Source source;
        bool timeout;  // "no device answered": sets the status time-out bit
    };

    uint8_t read_status() const;
    uint8_t read_data();
    void write_data(uint8_t value);
    void write_command(uint8_t command);
    void push(uint8_t value, Source source, bool timeout = false);
    void update_irqs();

    StopSink& stop_;
    InterruptLine* kbd_irq_;
    InterruptLine* aux_irq_;

    mutable std::mutex mutex_;
    std::array<uint8_t, 32> ram_{};  // ram_[0] is the configuration byte
    uint8_t output_port_;
    uint8_t pending_command_ = 0;  // a command waiting for its data byte
    bool last_write_was_command_ = false;
    static constexpr size_t kQueueSize = 16;
    std::array<OutputByte, kQueueSize> queue_{};
    size_t queue_head_ = 0;
    size_t queue_count_ = 0;
    uint8_t last_read_ = 0;
    uint64_t dropped_ = 0;
    bool kbd_level_ = false;
    bool aux_level_ = false;
};

}  // namespace vireo
