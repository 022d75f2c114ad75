// A device's InterruptLine on one GSI of KVM's in-kernel irqchip. Here, not
// in vmm/kvm/, so the KVM layer never needs a device header.
#pragma once

#include <cstdint>

#include "vmm/devices/device.h"
#include "vmm/kvm/vm.h"

namespace vireo {

class KvmIrqLine final : public InterruptLine {
public:
    KvmIrqLine(const Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
    void set_level(bool asserted) override { vm_.set_irq_line(gsi_, asserted); }
    uint32_t gsi() const { return gsi_; }

private:
    const Vm& vm_;
    uint32_t gsi_;
};

}  // namespace vireo
