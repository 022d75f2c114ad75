// An edge-triggered interrupt line backed by an eventfd that KVM_IRQFD
// binds to a GSI: a write injects the interrupt from whatever thread raises
// it (the I/O thread) without a KVM ioctl or a vCPU exit. virtio-mmio
// interrupts are edge-triggered in the DSDT, so lowering the line is a no-op.
#pragma once

#include <sys/eventfd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <expected>
#include <string>

#include "vmm/devices/device.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

class IrqFdLine final : public InterruptLine {
public:
    static std::expected<IrqFdLine, std::string> create(uint32_t gsi) {
        IrqFdLine line;
        line.gsi_ = gsi;
        line.fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!line.fd_) return std::unexpected(std::string("irqfd eventfd: ") + std::strerror(errno));
        return line;
    }
    IrqFdLine(IrqFdLine&& o) noexcept : fd_(std::move(o.fd_)), gsi_(o.gsi_), raised_(o.raised_.load()) {}

    void set_level(bool asserted) override {
        if (!asserted) return;
        raised_.fetch_add(1, std::memory_order_relaxed);
        // EAGAIN means the counter is saturated: an injection is pending anyway.
        (void)::eventfd_write(fd_.get(), 1);
    }
    int fd() const { return fd_.get(); }
    uint32_t gsi() const { return gsi_; }
    uint64_t raised() const { return raised_.load(std::memory_order_relaxed); }

private:
    IrqFdLine() = default;
    UniqueFd fd_;
    uint32_t gsi_ = 0;
    std::atomic<uint64_t> raised_{0};
};

}  // namespace vireo
