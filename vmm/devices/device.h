// The interface every emulated device implements, and the handles a device
// gets from the machine (interrupt lines, stop requests).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vmm/stop_request.h"

namespace vireo {

// A device owns a window of PIO ports or MMIO addresses. `offset` is relative
// to the window's base; `data` is the access (1, 2, 4 or 8 bytes, little
// endian). Called from vCPU threads without bus locks: a device that also has
// another thread touching its state (stdin, I/O) locks its own state.
class Device {
public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    // A read fills all of `data`; unimplemented registers read as zeros/ones
    // as the device's spec says.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// One guest interrupt line (a GSI on the in-kernel PIC/IOAPIC).
class InterruptLine {
public:
    virtual ~InterruptLine() = default;
    virtual void set_level(bool asserted) = 0;
    // Edge-triggered ISA devices: raise then lower.
    void pulse() {
        set_level(true);
        set_level(false);
    }
};

class StopSink {
public:
    virtual ~StopSink() = default;
    // Thread-safe; the first request wins, later ones are logged only.
    virtual void request_stop(StopRequest request) = 0;
    // Blocks up to `timeout`; returns true at once if a stop was requested
    // (so a vCPU idling through the test guest's idle port wakes on stop).
    virtual bool wait_for_stop(std::chrono::nanoseconds timeout) = 0;
    virtual bool stop_requested() const = 0;
};

// Reads little-endian values of 1..8 bytes from an access.
inline uint64_t load_le(std::span<const uint8_t> data) {
    uint64_t v = 0;
    for (size_t i = 0; i < data.size() && i < 8; ++i) v |= uint64_t(data[i]) << (8 * i);
    return v;
}
inline void store_le(std::span<uint8_t> data, uint64_t v) {
    for (size_t i = 0; i < data.size(); ++i) data[i] = i < 8 ? uint8_t(v >> (8 * i)) : 0;
}

}  // namespace vireo
