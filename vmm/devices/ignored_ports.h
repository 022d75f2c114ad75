// A device for ports whose accesses are expected and meaningless on this
// machine, so they are not counted as unhandled accesses: the POST/delay
// port 0x80 that Linux writes to for I/O delays (outb_p) and that firmware
// uses for POST codes.
//
// Registered at (IgnoredPorts::kPostPort = 0x80, window 1).
//  read:  all ones, as an ISA port with nothing behind it reads
//  write: dropped
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class IgnoredPorts final : public Device {
public:
    static constexpr uint64_t kPostPort = 0x80;
    static constexpr uint64_t kPostPortWindowSize = 1;

    // `name` names the window in logs and stats; it must outlive the device
    // (a string literal).
    explicit IgnoredPorts(std::string_view name) : name_(name) {}

    std::string_view name() const override { return name_; }
    void read(uint64_t, std::span<uint8_t> data) override { std::memset(data.data(), 0xff, data.size()); }
    void write(uint64_t, std::span<const uint8_t>) override {}

private:
    std::string_view name_;
};

}  // namespace vireo
