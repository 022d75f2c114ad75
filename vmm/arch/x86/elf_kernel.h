// ELF64 kernels and guests: a vmlinux (possibly unpacked from a bzImage), a
// PVH-capable kernel, or the vireo ring-3 test guest. Parses the program
// headers and the notes that choose the boot protocol.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vireo/testguest_abi.h"

namespace vireo {

// Xen's ELF note type for the 32-bit PVH entry point (xen/include/public/elfnote.h).
inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

struct ElfSegment {
    uint64_t paddr = 0;   // where vireo loads it (guest-physical)
    uint64_t vaddr = 0;   // where the kernel runs it; may differ (vmlinux)
    uint64_t offset = 0;  // in the file
    uint64_t filesz = 0;  // bytes copied from the file; the rest of memsz is zeroed
    uint64_t memsz = 0;
    uint32_t flags = 0;   // PF_R / PF_W / PF_X
    std::span<const uint8_t> data;  // the filesz bytes, inside the caller's buffer
};

struct ElfImage {
    uint16_t type = 0;      // ET_EXEC or ET_DYN
    uint64_t entry = 0;     // e_entry
    std::vector<ElfSegment> segments;  // the PT_LOAD ones, in file order
    // From a "Xen" note of type 18: the 32-bit PVH entry (physical).
    std::optional<uint32_t> pvh_entry;
    // From a "vireo" note of type VIREO_NOTE_RING3: boot in ring 3.
    std::optional<vireo_ring3_note> ring3;

    // Lowest paddr and one past the highest paddr + memsz of the segments.
    uint64_t paddr_start() const;
    uint64_t paddr_end() const;
};

// The ring-3 stack size a note asks for, with 0 meaning the 64 KiB default.
inline uint32_t ring3_stack_size(const vireo_ring3_note& n) { return n.stack_size ? n.stack_size : 64 * 1024; }

// Parses an ELF64 little-endian x86-64 ET_EXEC/ET_DYN image; never reads
// outside `file`. Checks that the program headers and every PT_LOAD's file
// bytes lie inside the file, filesz <= memsz, that no address range wraps,
// that there is at least one PT_LOAD and that the entry point lies in one
// (by virtual or physical address). The spans point into `file`.
std::expected<ElfImage, std::string> parse_elf64(std::span<const uint8_t> file);

// Checks that every segment lies in guest RAM at [1 MiB, RAM end below the
// MMIO hole): the low MiB holds vireo's own boot tables.
std::expected<void, std::string> check_segments_fit(const ElfImage& image, uint64_t mem_size);

}  // namespace vireo
