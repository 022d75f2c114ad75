// Address-range dispatch of PIO and MMIO exits to devices.
//
// Devices are registered while the machine is built; the bus is frozen
// before the first vCPU runs, so lookups on the hot path take no lock
// (a sorted vector and a binary search).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/device.h"

namespace vireo {

class IoBus {
public:
    explicit IoBus(std::string name) : name_(std::move(name)) {}

    // Fails (returns false) if the range is empty or overlaps another.
    bool add(uint64_t base, uint64_t length, std::shared_ptr<Device> device);
    void freeze() { frozen_ = true; }

    // Returns false if no device claims `addr`; the access is then counted
    // and ignored (reads return all ones, as on a real ISA bus).
    bool read(uint64_t addr, std::span<uint8_t> data);
    bool write(uint64_t addr, std::span<const uint8_t> data);

    uint64_t unhandled() const { return unhandled_.load(std::memory_order_relaxed); }
    const std::string& name() const { return name_; }

private:
    struct Range {
        uint64_t base;
        uint64_t length;
        std::shared_ptr<Device> device;
    };
    const Range* find(uint64_t addr) const;
    void note_unhandled(uint64_t addr, bool is_write);

    std::string name_;
    std::vector<Range> ranges_;  // sorted by base
    bool frozen_ = false;
    std::atomic<uint64_t> unhandled_{0};
};

}  // namespace vireo
