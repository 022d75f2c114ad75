// Everything needed to build one guest, as the command line (or, later, a
// host config file or the control socket) describes it.
#pragma once

#include <cstdint>
#include <string>

namespace vireo {

struct MachineConfig {
    std::string name = "vm0";
    std::string kernel;
    std::string initrd;
    std::string cmdline;
    unsigned cpus = 1;
    uint64_t mem_bytes = 256ull << 20;
    std::string console = "stdio";
    bool hugepages = false;
    bool stats = false;  // print run statistics at exit
    // Unpack an xz bzImage natively and boot its vmlinux (skips the guest's
    // own decompressor, slow under nested emulation).
    bool unpack_kernel = true;
};

}  // namespace vireo
