#include "vmm/arch/x86/zero_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "vireo/layout.h"
#include "vmm/arch/x86/bytes.h"

namespace vireo {

// The boot protocol fixes these offsets; the kernel reads them there.
static_assert(offsetof(boot_params, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(boot_params, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(boot_params, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(boot_params, e820_entries) == 0x1e8);
static_assert(offsetof(boot_params, sentinel) == 0x1ef);
static_assert(offsetof(boot_params, hdr) == 0x1f1);
static_assert(offsetof(boot_params, e820_table) == 0x2d0);
static_assert(sizeof(boot_e820_entry) == 20);

namespace {
constexpr uint64_t kPage = 4096;
constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
// COMMAND_LINE_SIZE on x86 is 2048 including the NUL; the 64-bit kernel
// copies that much from cmd_line_ptr whatever the header says.
constexpr uint32_t kDefaultCmdlineSize = 2047;
}  // namespace

setup_header default_setup_header() {
    setup_header h;
    std::memset(&h, 0, sizeof h);
    h.boot_flag = 0xaa55;
    h.header = kHdrSMagic;
    h.version = 0x020f;
    h.vid_mode = 0xffff;  // "normal"
    h.kernel_alignment = 0x200000;
    h.relocatable_kernel = 1;
    h.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    h.initrd_addr_max = 0x7fffffff;
    h.cmdline_size = kDefaultCmdlineSize;
    return h;
}

std::expected<void, std::string> write_zero_page(std::span<uint8_t> zero_page, const setup_header& hdr,
                                                 const ZeroPageParams& p) {
    if (zero_page.size() < sizeof(boot_params))
        return std::unexpected(fmt::format("zero page: buffer is {} bytes, needs {}", zero_page.size(),
                                           sizeof(boot_params)));
    if (p.e820.size() > E820_MAX_ENTRIES_ZEROPAGE)
        return std::unexpected(fmt::format("zero page: {} E820 entries, the zero page holds at most {}",
                                           p.e820.size(), E820_MAX_ENTRIES_ZEROPAGE));
    // cmdline_size is meaningful from protocol 2.06 on; before, 255 bytes.
    const uint32_t cmdline_max = hdr.version >= 0x0206 ? hdr.cmdline_size : 255;
    if (p.cmdline_size > cmdline_max)
        return std::unexpected(fmt::format("zero page: command line is {} bytes, the kernel accepts at most {} "
                                           "(cmdline_size at 0x238)",
                                           p.cmdline_size, cmdline_max));
    if (p.initrd_size > 0) {
        const auto last = x86::checked_add(p.initrd_addr, p.initrd_size - 1);
        if (!last)
            return std::unexpected(fmt::format("zero page: initrd at 0x{:x} of {} bytes wraps around",
                                               p.initrd_addr, p.initrd_size));
        if (*last > hdr.initrd_addr_max && !(hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G))
            return std::unexpected(fmt::format("zero page: initrd ends at 0x{:x}, above the kernel's "
                                               "initrd_addr_max 0x{:x}",
                                               *last, hdr.initrd_addr_max));
    }

    // A clean page with only the setup header copied in: boot.rst asks
    // loaders to do exactly this (the kernel checks the sentinel at 0x1ef).
    boot_params bp;
    std::memset(&bp, 0, sizeof bp);
    bp.hdr = hdr;
    bp.hdr.type_of_loader = p.type_of_loader;
    bp.hdr.ext_loader_ver = p.ext_loader_ver;
    bp.hdr.ext_loader_type = p.ext_loader_type;
    bp.hdr.loadflags = uint8_t(bp.hdr.loadflags | LOADED_HIGH | CAN_USE_HEAP);
    bp.hdr.heap_end_ptr = p.heap_end_ptr;
    bp.hdr.cmd_line_ptr = uint32_t(p.cmdline_addr);
    bp.ext_cmd_line_ptr = uint32_t(p.cmdline_addr >> 32);
    bp.hdr.ramdisk_image = uint32_t(p.initrd_addr);
    bp.ext_ramdisk_image = uint32_t(p.initrd_addr >> 32);
    bp.hdr.ramdisk_size = uint32_t(p.initrd_size);
    bp.ext_ramdisk_size = uint32_t(p.initrd_size >> 32);
    bp.acpi_rsdp_addr = p.acpi_rsdp_addr;
    bp.e820_entries = uint8_t(p.e820.size());
    for (size_t i = 0; i < p.e820.size(); ++i) {
        bp.e820_table[i].addr = p.e820[i].addr;
        bp.e820_table[i].size = p.e820[i].size;
        bp.e820_table[i].type = p.e820[i].type;
    }
    std::memcpy(zero_page.data(), &bp, sizeof bp);
    return {};
}

std::expected<uint64_t, std::string> choose_initrd_addr(uint64_t mem_size, uint64_t initrd_size,
                                                        uint64_t initrd_addr_max, uint64_t kernel_end) {
    if (initrd_size == 0) return std::unexpected(std::string("initrd: file is empty"));
    // initrd_addr_max is the last byte the initrd may occupy.
    const uint64_t limit = std::min(low_ram_end(mem_size), x86::checked_add(initrd_addr_max, 1).value_or(UINT64_MAX));
    const uint64_t floor = x86::checked_add(kernel_end, kPage - 1).value_or(UINT64_MAX) & ~(kPage - 1);
    const uint64_t lowest = std::max<uint64_t>(floor, VIREO_HIGH_MEM);
    if (initrd_size > limit || x86::align_down(limit - initrd_size, kPage) < lowest)
        return std::unexpected(fmt::format("initrd: {} bytes do not fit between the kernel's end 0x{:x} and 0x{:x} "
                                           "(the lower of RAM below the MMIO hole and initrd_addr_max + 1)",
                                           initrd_size, lowest, limit));
    return x86::align_down(limit - initrd_size, kPage);
}

}  // namespace vireo
