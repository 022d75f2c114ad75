#include "vmm/kvm/vm.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vireo/layout.h"

namespace vireo {

namespace {
std::string ioctl_error(const char* what) { return fmt::format("{}: {}", what, std::strerror(errno)); }
}  // namespace

std::expected<Vm, std::string> Vm::create(const KvmSystem& kvm) {
    Vm vm;
    // KVM_CREATE_VM can fail transiently with EINTR.
    int fd;
    do fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return std::unexpected(ioctl_error("KVM_CREATE_VM"));
    vm.fd_.reset(fd);
    return vm;
}

std::expected<void, std::string> Vm::map_memory(const GuestMemory& mem) {
    for (const auto& r : mem.regions()) {
        kvm_userspace_memory_region region{};
        region.slot = next_slot_++;
        region.guest_phys_addr = r.guest_addr;
        region.memory_size = r.size;
        region.userspace_addr = reinterpret_cast<uint64_t>(r.host);
        if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0)
            return std::unexpected(ioctl_error("KVM_SET_USER_MEMORY_REGION"));
    }
    return {};
}

std::expected<void, std::string> Vm::create_x86_irqchip() {
    // Three pages just below the BIOS area for the TSS and the identity map
    // of real mode; they must not overlap guest RAM we use.
    if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, 0xfffbd000ul) != 0) return std::unexpected(ioctl_error("KVM_SET_TSS_ADDR"));
    uint64_t identity = 0xfffbc000ul;
    if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity) != 0)
        return std::unexpected(ioctl_error("KVM_SET_IDENTITY_MAP_ADDR"));
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) != 0) return std::unexpected(ioctl_error("KVM_CREATE_IRQCHIP"));
    kvm_pit_config pit{};
    pit.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &pit) != 0) return std::unexpected(ioctl_error("KVM_CREATE_PIT2"));
    return {};
}

bool Vm::set_irq_line(uint32_t gsi, bool level) const {
    kvm_irq_level irq{};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    return ::ioctl(fd_.get(), KVM_IRQ_LINE, &irq) == 0;
}

std::expected<void, std::string> Vm::add_ioeventfd(uint64_t addr, uint32_t len, int eventfd, bool pio,
                                                   std::optional<uint64_t> datamatch) const {
    kvm_ioeventfd ev{};
    ev.addr = addr;
    ev.len = len;
    ev.fd = eventfd;
    ev.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0);
    ev.datamatch = datamatch.value_or(0);
    if (::ioctl(fd_.get(), KVM_IOEVENTFD, &ev) != 0) return std::unexpected(ioctl_error("KVM_IOEVENTFD"));
    return {};
}

std::expected<void, std::string> Vm::add_irqfd(uint32_t gsi, int eventfd) const {
    kvm_irqfd irqfd{};
    irqfd.fd = uint32_t(eventfd);
    irqfd.gsi = gsi;
    if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) != 0) return std::unexpected(ioctl_error("KVM_IRQFD"));
    return {};
}

}  // namespace vireo
