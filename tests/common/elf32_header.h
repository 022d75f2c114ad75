// The ELF header of a 32-bit i386 executable: what a 32-bit-only kernel
// starts with. Shared by the parser's unit test and the kvm layer's bad-kernel
// test, which both check that such a kernel is refused.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>

namespace vireo::testimg {

inline Elf32_Ehdr elf32_exec_header(uint32_t entry) {
    Elf32_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS32;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_386;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_ehsize = sizeof eh;
    return eh;
}

}  // namespace vireo::testimg
