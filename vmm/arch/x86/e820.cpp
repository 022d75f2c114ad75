#include "vmm/arch/x86/e820.h"

#include <algorithm>

#include "vireo/layout.h"

namespace vireo {

namespace {
// The legacy VGA/option-ROM window [0xa0000, 0xe0000) is neither RAM nor
// reserved in the map: real BIOSes leave it out too, and Linux treats the
// gap as I/O space.
constexpr uint64_t kBaseMemEnd = 0xa0000;
constexpr uint64_t kBiosAreaStart = 0xe0000;
}  // namespace

uint64_t low_ram_end(uint64_t mem_size) { return std::min<uint64_t>(mem_size, VIREO_MMIO_HOLE); }

std::vector<E820Entry> build_e820(uint64_t mem_size) {
    std::vector<E820Entry> map;
    map.push_back({0, VIREO_EBDA_START, kE820Ram});
    map.push_back({VIREO_EBDA_START, kBaseMemEnd - VIREO_EBDA_START, kE820Reserved});
    map.push_back({kBiosAreaStart, VIREO_HIGH_MEM - kBiosAreaStart, kE820Reserved});
    const uint64_t low_end = low_ram_end(mem_size);
    if (low_end > VIREO_HIGH_MEM) map.push_back({VIREO_HIGH_MEM, low_end - VIREO_HIGH_MEM, kE820Ram});
    if (mem_size > VIREO_MMIO_HOLE) map.push_back({VIREO_HIGH_RAM, mem_size - VIREO_MMIO_HOLE, kE820Ram});
    return map;
}

std::vector<RamRegion> guest_ram_regions(uint64_t mem_size) {
    std::vector<RamRegion> regions;
    const uint64_t low_end = low_ram_end(mem_size);
    if (low_end > 0) regions.push_back({0, low_end});
    if (mem_size > VIREO_MMIO_HOLE) regions.push_back({VIREO_HIGH_RAM, mem_size - VIREO_MMIO_HOLE});
    return regions;
}

}  // namespace vireo
