// The Linux zero page (struct boot_params) for the 64-bit boot protocol,
// and where to put the initrd (Documentation/x86/boot.rst, zero-page.rst).
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "vmm/arch/x86/e820.h"

namespace vireo {

static_assert(sizeof(boot_params) == 4096, "the zero page is one page");

struct ZeroPageParams {
    uint64_t cmdline_addr = 0;       // guest address of the NUL-terminated command line
    uint32_t cmdline_size = 0;       // its length without the NUL
    uint64_t initrd_addr = 0;        // 0 and size 0: no initrd
    uint64_t initrd_size = 0;
    std::vector<E820Entry> e820;     // at most E820_MAX_ENTRIES_ZEROPAGE
    uint64_t acpi_rsdp_addr = 0;     // 0: the kernel scans 0xe0000-0xfffff
    // 0xff: "undefined" loader type; boot.rst asks loaders without an
    // assigned id to say so rather than pretend to be another loader.
    uint8_t type_of_loader = 0xff;
    uint8_t ext_loader_ver = 0;
    uint8_t ext_loader_type = 0;
    // End of the setup heap relative to the real-mode code, minus 0x200;
    // 0xfe00 is the value boot.rst suggests for a full 64 KiB segment.
    uint16_t heap_end_ptr = 0xfe00;
};

// The setup header to use when there is no bzImage (a vmlinux ELF booted
// directly): only the fields the 64-bit entry reads are set.
setup_header default_setup_header();

// Fills `zero_page` (at least 4096 bytes) for the 64-bit boot protocol:
// clears it, copies `hdr` (from the image or default_setup_header()) to
// 0x1f1 and sets what the loader owns: type_of_loader, loadflags
// (LOADED_HIGH | CAN_USE_HEAP), heap_end_ptr, the command line and initrd
// pointers (low and ext_ high halves), the E820 table and the RSDP address.
// Fails, leaving `zero_page` untouched, if the command line is longer than
// the kernel accepts, the E820 table has too many entries, or the initrd
// lies above initrd_addr_max for a kernel that cannot take it above 4 GiB.
std::expected<void, std::string> write_zero_page(std::span<uint8_t> zero_page, const setup_header& hdr,
                                                 const ZeroPageParams& p);

// Where to load an initrd of `initrd_size` bytes: page-aligned, as high as
// allowed, below both initrd_addr_max (inclusive, from the header) and the
// end of RAM below the MMIO hole, and not below `kernel_end`. The error says
// how much room there was.
std::expected<uint64_t, std::string> choose_initrd_addr(uint64_t mem_size, uint64_t initrd_size,
                                                        uint64_t initrd_addr_max, uint64_t kernel_end);

}  // namespace vireo
