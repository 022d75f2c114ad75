// A KVM virtual machine fd: memory slots, the in-kernel irqchip and PIT,
// interrupt lines (devices/kvm_irq_line.h wraps one GSI for a device),
// ioeventfd/irqfd registration.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/unique_fd.h"

namespace vireo {

class Vm {
public:
    static std::expected<Vm, std::string> create(const KvmSystem& kvm);

    int fd() const { return fd_.get(); }
    // Registers every region of `mem` as a KVM memory slot.
    std::expected<void, std::string> map_memory(const GuestMemory& mem);
    // x86 machine set-up: TSS/identity-map addresses, in-kernel
    // PIC+IOAPIC+LAPIC, PIT (channel 0 on IRQ 0, speaker port dummy).
    std::expected<void, std::string> create_x86_irqchip();
    // Drives one GSI of the in-kernel irqchip (KVM_IRQ_LINE).
    bool set_irq_line(uint32_t gsi, bool level) const;

    std::expected<void, std::string> add_ioeventfd(uint64_t addr, uint32_t len, int eventfd, bool pio,
                                                   std::optional<uint64_t> datamatch = std::nullopt) const;
    std::expected<void, std::string> add_irqfd(uint32_t gsi, int eventfd) const;

private:
    UniqueFd fd_;
    uint32_t next_slot_ = 0;
};

}  // namespace vireo
