// Test doubles for the handles a device gets from the machine: a StopSink
// that records requests (and wakes waiters like the real one), an
// InterruptLine that records every level change, and byte-access helpers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "vmm/devices/device.h"

namespace vireo::test {

class FakeStopSink final : public StopSink {
public:
    void request_stop(StopRequest request) override {
        std::lock_guard lock(mutex_);
        requests_.push_back(std::move(request));
        cv_.notify_all();
    }
    bool wait_for_stop(std::chrono::nanoseconds timeout) override {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [this] { return !requests_.empty(); });
    }
    bool stop_requested() const override {
        std::lock_guard lock(mutex_);
        return !requests_.empty();
    }
    std::vector<StopRequest> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<StopRequest> requests_;
};

class FakeInterruptLine final : public InterruptLine {
public:
    void set_level(bool asserted) override {
        std::lock_guard lock(mutex_);
        levels_.push_back(asserted);
    }
    bool level() const {
        std::lock_guard lock(mutex_);
        return !levels_.empty() && levels_.back();
    }
    std::vector<bool> levels() const {
        std::lock_guard lock(mutex_);
        return levels_;
    }
    size_t changes() const {
        std::lock_guard lock(mutex_);
        return levels_.size();
    }

private:
    mutable std::mutex mutex_;
    std::vector<bool> levels_;
};

inline uint8_t read8(Device& d, uint64_t offset) {
    uint8_t v = 0;
    d.read(offset, std::span<uint8_t>(&v, 1));
    return v;
}
inline uint64_t read_n(Device& d, uint64_t offset, size_t size) {
    uint8_t buf[8] = {};
    d.read(offset, std::span<uint8_t>(buf, size));
    return load_le(std::span<const uint8_t>(buf, size));
}
inline void write8(Device& d, uint64_t offset, uint8_t v) { d.write(offset, std::span<const uint8_t>(&v, 1)); }
inline void write_n(Device& d, uint64_t offset, uint64_t v, size_t size) {
    uint8_t buf[8] = {};
    store_le(std::span<uint8_t>(buf, size), v);
    d.write(offset, std::span<const uint8_t>(buf, size));
}

}  // namespace vireo::test
