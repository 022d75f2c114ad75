// Synthetic kernel images for the x86 parser tests (and the fuzz seeds):
// small, built field by field from the specs so every test can break one
// field at a time.
#pragma once

#include <asm/bootparam.h>
#include <elf.h>
#include <lzma.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/common/elf32_header.h"
#include "vireo/testguest_abi.h"

namespace vireo::testimg {

inline void put(std::vector<uint8_t>& b, size_t off, uint64_t v, int n) {
    if (b.size() < off + n) b.resize(off + n);
    for (int i = 0; i < n; ++i) b[off + i] = uint8_t(v >> (8 * i));
}

struct BzSpec {
    uint8_t setup_sects = 4;
    uint16_t version = 0x020f;
    uint16_t xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    uint8_t jump_disp = 0x6a;  // header ends at 0x202 + this
    std::vector<uint8_t> payload = std::vector<uint8_t>{0xfd, '7', 'z', 'X', 'Z', 0x00, 1, 2, 3, 4};
    uint32_t init_size = 0x800000;
    uint32_t kernel_alignment = 0x200000;
    uint32_t cmdline_size = 2047;
    uint32_t initrd_addr_max = 0x7fffffff;
    uint64_t pref_address = 0x1000000;
};

// setup sectors, then the protected-mode part: 0x200 bytes of "code", the
// payload at payload_offset 0x200, 16 bytes of tail.
inline std::vector<uint8_t> make_bzimage(const BzSpec& s = {}) {
    const size_t setup_bytes = (size_t(s.setup_sects ? s.setup_sects : 4) + 1) * 512;
    const size_t pm_size = (0x200 + s.payload.size() + 16 + 15) & ~size_t(15);  // syssize counts paragraphs
    std::vector<uint8_t> f(setup_bytes + pm_size, 0);
    f[0x1f1] = s.setup_sects;
    put(f, 0x1f4, (pm_size + 15) / 16, 4);  // syssize
    put(f, 0x1fa, 0xffff, 2);              // vid_mode
    put(f, 0x1fe, 0xaa55, 2);
    f[0x200] = 0xeb;
    f[0x201] = s.jump_disp;
    std::memcpy(&f[0x202], "HdrS", 4);
    put(f, 0x206, s.version, 2);
    put(f, 0x211, LOADED_HIGH, 1);
    put(f, 0x214, 0x100000, 4);  // code32_start
    put(f, 0x22c, s.initrd_addr_max, 4);
    put(f, 0x230, s.kernel_alignment, 4);
    f[0x234] = 1;  // relocatable
    f[0x235] = 21;
    put(f, 0x236, s.xloadflags, 2);
    put(f, 0x238, s.cmdline_size, 4);
    put(f, 0x248, 0x200, 4);  // payload_offset
    put(f, 0x24c, s.payload.size(), 4);
    put(f, 0x258, s.pref_address, 8);
    put(f, 0x260, s.init_size, 4);
    for (size_t i = 0; i < 0x200; ++i) f[setup_bytes + i] = 0x90;  // nops standing in for code
    std::memcpy(&f[setup_bytes + 0x200], s.payload.data(), s.payload.size());
    return f;
}

struct LoadSpec {
    uint64_t paddr;
    uint64_t vaddr;
    std::vector<uint8_t> data;
    uint64_t memsz;
};

struct ElfSpec {
    uint16_t type = ET_EXEC;
    uint16_t machine = EM_X86_64;
    uint64_t entry = 0x200000;
    std::vector<LoadSpec> loads = {{0x200000, 0x200000, std::vector<uint8_t>(64, 0xf4), 0x3000}};
    std::optional<uint64_t> pvh_entry;  // written as an 8-byte value, as Linux does
    int pvh_desc_size = 8;
    std::optional<vireo_ring3_note> ring3;
};

inline void add_note(std::vector<uint8_t>& n, const std::string& name, uint32_t type,
                     const std::vector<uint8_t>& desc) {
    const size_t at = n.size();
    put(n, at, name.size() + 1, 4);
    put(n, at + 4, desc.size(), 4);
    put(n, at + 8, type, 4);
    n.insert(n.end(), name.begin(), name.end());
    n.push_back(0);
    while (n.size() % 4) n.push_back(0);
    n.insert(n.end(), desc.begin(), desc.end());
    while (n.size() % 4) n.push_back(0);
}

inline std::vector<uint8_t> make_elf64(const ElfSpec& s = {}) {
    std::vector<uint8_t> notes;
    if (s.pvh_entry) {
        std::vector<uint8_t> d(s.pvh_desc_size);
        for (int i = 0; i < s.pvh_desc_size; ++i) d[i] = uint8_t(*s.pvh_entry >> (8 * i));
        add_note(notes, "Xen", 6, {'l', 'i', 'n', 'u', 'x', 0});  // XEN_ELFNOTE_GUEST_OS, ignored
        add_note(notes, "Xen", 18, d);
    }
    if (s.ring3) {
        std::vector<uint8_t> d(sizeof(vireo_ring3_note));
        std::memcpy(d.data(), &*s.ring3, d.size());
        add_note(notes, "GNU", 3, std::vector<uint8_t>(20, 0xab));  // a build id, ignored
        add_note(notes, VIREO_NOTE_NAME, VIREO_NOTE_RING3, d);
    }
    const size_t phnum = s.loads.size() + (notes.empty() ? 0 : 1);
    const size_t ph_off = sizeof(Elf64_Ehdr);
    size_t off = ph_off + phnum * sizeof(Elf64_Phdr);
    std::vector<uint8_t> f(off, 0);
    const size_t notes_off = off;
    f.insert(f.end(), notes.begin(), notes.end());

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = s.type;
    eh.e_machine = s.machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = s.entry;
    eh.e_phoff = ph_off;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = uint16_t(phnum);
    std::memcpy(f.data(), &eh, sizeof eh);

    size_t ph_at = ph_off;
    for (const auto& l : s.loads) {
        while (f.size() % 16) f.push_back(0);
        Elf64_Phdr ph{};
        ph.p_type = PT_LOAD;
        ph.p_flags = PF_R | PF_X;
        ph.p_offset = f.size();
        ph.p_vaddr = l.vaddr;
        ph.p_paddr = l.paddr;
        ph.p_filesz = l.data.size();
        ph.p_memsz = l.memsz;
        ph.p_align = 16;
        f.insert(f.end(), l.data.begin(), l.data.end());
        std::memcpy(&f[ph_at], &ph, sizeof ph);
        ph_at += sizeof ph;
    }
    if (!notes.empty()) {
        Elf64_Phdr ph{};
        ph.p_type = PT_NOTE;
        ph.p_offset = notes_off;
        ph.p_filesz = ph.p_memsz = notes.size();
        ph.p_align = 4;
        std::memcpy(&f[ph_at], &ph, sizeof ph);
    }
    return f;
}

// A minimal 32-bit x86 ELF header (what a 32-bit-only kernel looks like).
inline std::vector<uint8_t> make_elf32() {
    Elf32_Ehdr eh = elf32_exec_header(0x100000);
    std::vector<uint8_t> f(sizeof eh + 64, 0);
    std::memcpy(f.data(), &eh, sizeof eh);
    return f;
}

// xz with the x86 BCJ filter and LZMA2, CRC32 check: how Linux compresses
// its payload (scripts/xz_wrap.sh), then the 4-byte size trailer it appends.
inline std::vector<uint8_t> xz_like_linux(const std::vector<uint8_t>& in, bool trailer = true) {
    lzma_options_lzma opt;
    if (lzma_lzma_preset(&opt, 0)) throw std::runtime_error("lzma preset");
    lzma_filter filters[] = {{LZMA_FILTER_X86, nullptr}, {LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
    std::vector<uint8_t> out(lzma_stream_buffer_bound(in.size()));
    size_t pos = 0;
    if (lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, nullptr, in.data(), in.size(), out.data(), &pos,
                                  out.size()) != LZMA_OK)
        throw std::runtime_error("xz encode");
    out.resize(pos);
    if (trailer) put(out, out.size(), in.size(), 4);
    return out;
}

}  // namespace vireo::testimg
