// From a kernel file to the state of the first instruction: reads and checks
// the image (bzImage, vmlinux ELF, or a vireo ring-3 ELF), then writes it and
// every boot table (zero page or PVH start info, e820, MP, ACPI, page
// tables, the ring-3 boot info) into guest memory.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "vmm/arch/x86/acpi.h"
#include "vmm/arch/x86/bzimage.h"
#include "vmm/arch/x86/elf_kernel.h"
#include "vmm/arch/x86/vcpu_init.h"
#include "vmm/kvm/guest_memory.h"

namespace vireo {

struct KernelImage {
    std::string path;
    std::vector<uint8_t> file;        // BzImage/ElfImage spans point into this buffer
    std::optional<BzImage> bzimage;
    std::optional<ElfImage> elf;
    // A bzImage whose xz payload vireo unpacked itself: the vmlinux ELF.
    std::vector<uint8_t> unpacked;

    KernelImage() = default;
    KernelImage(KernelImage&&) = default;  // moving a vector keeps its buffer: spans stay valid
    KernelImage& operator=(KernelImage&&) = default;
    KernelImage(const KernelImage&) = delete;

    bool ring3() const { return elf && elf->ring3; }
    std::string describe() const;
};

// Reads a whole regular file of at most `limit` bytes; errors start with
// `what` and the path ("--initrd /x: No such file or directory").
std::expected<std::vector<uint8_t>, std::string> read_boot_file(const std::string& what, const std::string& path,
                                                               uint64_t limit);

// Reads `path` and checks it can boot in `mem_size` bytes of RAM. With
// `unpack`, a bzImage's xz payload is decompressed here (natively, much
// faster than the guest's own decompressor under nested emulation) and the
// vmlinux ELF inside is booted through the 64-bit entry instead.
std::expected<KernelImage, std::string> read_kernel_image(const std::string& path, uint64_t mem_size, bool unpack);

struct BootInputs {
    std::string cmdline;
    std::vector<uint8_t> initrd;
    unsigned cpus = 1;
    uint64_t mem_size = 0;
    uint32_t tsc_khz = 0;
    std::vector<VirtioMmioDesc> virtio;
};

struct BootPlan {
    EntryMode mode = EntryMode::Linux64;
    // Ring 3: one entry per vCPU, all started at once. Otherwise one entry,
    // for the boot vCPU; the others wait for INIT/SIPI.
    std::vector<EntryState> entries;
    uint64_t kernel_end = 0;
    uint64_t initrd_addr = 0;
};

std::expected<BootPlan, std::string> load_kernel(const KernelImage& image, const GuestMemory& mem,
                                                 const BootInputs& in);

}  // namespace vireo
