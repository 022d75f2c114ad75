// The guest's physical memory map: the E820 table handed to Linux and the
// RAM ranges backed by KVM memory slots. Both derive from one RAM size and
// include/vireo/layout.h, so they cannot disagree.
#pragma once

#include <cstdint>
#include <vector>

namespace vireo {

// E820 entry types (ACPI spec "Address Range Types").
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;
inline constexpr uint32_t kE820Acpi = 3;

struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    bool operator==(const E820Entry&) const = default;
};

// A range of guest-physical addresses backed by guest RAM (one KVM slot).
struct RamRegion {
    uint64_t guest_addr;
    uint64_t size;
    bool operator==(const RamRegion&) const = default;
};

// The map for a guest with `mem_size` bytes of RAM, in ascending order:
//   RAM      [0, EBDA)              base memory
//   reserved [EBDA, 0xa0000)        MP table lives here
//   reserved [0xe0000, 1 MiB)       ACPI tables and the BIOS area
//   RAM      [1 MiB, min(mem, MMIO hole))
//   RAM      [4 GiB, 4 GiB + mem - hole)   only when mem > hole
// RAM beyond the hole is moved above 4 GiB rather than lost, so the guest
// gets all of `mem_size`. The low entries are fixed: a machine needs more
// than 1 MiB of RAM, which the caller checks.
std::vector<E820Entry> build_e820(uint64_t mem_size);

// The KVM memory slots: [0, min(mem, hole)) and, when mem > hole, the rest
// at 4 GiB. The low slot also backs the reserved ranges above, which hold
// tables the VMM writes (they are RAM to KVM, reserved to the guest OS).
std::vector<RamRegion> guest_ram_regions(uint64_t mem_size);

// One past the last byte of RAM below the MMIO hole: where boot-time data
// (kernel, initrd) must end.
uint64_t low_ram_end(uint64_t mem_size);

}  // namespace vireo
