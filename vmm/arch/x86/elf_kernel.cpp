#include "vmm/arch/x86/elf_kernel.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "vireo/layout.h"
#include "vmm/arch/x86/bytes.h"
#include "vmm/arch/x86/e820.h"

namespace vireo {

namespace {

using x86::checked_add;
using x86::range_fits;
using x86::read_struct;

std::unexpected<std::string> fail(std::string msg) { return std::unexpected(std::move(msg)); }

// Rounds `v` up to `align` (a power of two), or UINT64_MAX if that overflows
// (which no valid offset reaches, so range checks then fail).
uint64_t align_up(uint64_t v, uint64_t align) {
    auto r = checked_add(v, align - 1);
    return r ? (*r & ~(align - 1)) : UINT64_MAX;
}

// Walks the notes of one PT_NOTE segment. The note format: namesz, descsz,
// type (4 bytes each), the name and the descriptor, each padded to the
// segment's alignment (4, or 8 for some ELF64 producers).
std::expected<void, std::string> parse_notes(std::span<const uint8_t> notes, uint64_t align, size_t phdr_index,
                                             ElfImage& img) {
    uint64_t off = 0;
    while (off < notes.size()) {
        const auto hdr = read_struct<Elf64_Nhdr>(notes, off);
        if (!hdr)
            return fail(fmt::format("kernel: note header at +0x{:x} in PT_NOTE {} runs past the segment", off,
                                    phdr_index));
        const uint64_t name_off = off + sizeof(Elf64_Nhdr);
        const uint64_t desc_off = align_up(name_off + hdr->n_namesz, align);
        const uint64_t next = align_up(desc_off + uint64_t(hdr->n_descsz), align);
        // namesz and descsz are 32-bit, so these sums cannot wrap; only the
        // padded descriptor may end past the segment (the last note's padding).
        if (!range_fits(name_off, hdr->n_namesz, notes.size()) || !range_fits(desc_off, hdr->n_descsz, notes.size()))
            return fail(fmt::format("kernel: note at +0x{:x} in PT_NOTE {} (namesz {}, descsz {}) runs past the "
                                    "segment",
                                    off, phdr_index, hdr->n_namesz, hdr->n_descsz));
        // The name includes its NUL terminator.
        std::string_view name(reinterpret_cast<const char*>(notes.data() + name_off), hdr->n_namesz);
        if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
        const auto desc = notes.subspan(desc_off, hdr->n_descsz);

        if (name == "Xen" && hdr->n_type == kXenElfnotePhys32Entry) {
            // Linux emits a pointer-sized value; other kernels a 32-bit one.
            uint64_t entry = 0;
            if (desc.size() == 4) entry = x86::get_le32(desc.data());
            else if (desc.size() == 8) entry = x86::get_le64(desc.data());
            else
                return fail(fmt::format("kernel: Xen PVH entry note has a {}-byte value, expected 4 or 8",
                                        desc.size()));
            if (entry > UINT32_MAX)
                return fail(fmt::format("kernel: Xen PVH entry 0x{:x} is above 4 GiB; PVH starts in 32-bit mode",
                                        entry));
            if (!img.pvh_entry) img.pvh_entry = uint32_t(entry);
        } else if (name == VIREO_NOTE_NAME && hdr->n_type == VIREO_NOTE_RING3) {
            if (desc.size() < sizeof(vireo_ring3_note))
                return fail(fmt::format("kernel: vireo ring-3 note has {} bytes, expected {}", desc.size(),
                                        sizeof(vireo_ring3_note)));
            vireo_ring3_note n;
            std::memcpy(&n, desc.data(), sizeof n);
            if (n.version != 1)
                return fail(fmt::format("kernel: vireo ring-3 note version {} is not supported (expected 1)",
                                        n.version));
            if (n.stack_size % 16 != 0)
                return fail(fmt::format("kernel: vireo ring-3 note asks for a {}-byte stack, not a multiple of 16",
                                        n.stack_size));
            if (!img.ring3) img.ring3 = n;
        }
        if (next >= notes.size()) break;
        off = next;
    }
    return {};
}

}  // namespace

uint64_t ElfImage::paddr_start() const {
    uint64_t lo = UINT64_MAX;
    for (const auto& s : segments) lo = std::min(lo, s.paddr);
    return segments.empty() ? 0 : lo;
}

uint64_t ElfImage::paddr_end() const {
    uint64_t hi = 0;
    for (const auto& s : segments) hi = std::max(hi, s.paddr + s.memsz);  // no wrap: checked when parsed
    return hi;
}

std::expected<ElfImage, std::string> parse_elf64(std::span<const uint8_t> file) {
    if (file.size() < EI_NIDENT || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0)
        return fail("kernel: not an ELF file (no \\x7fELF magic at offset 0)");
    if (file[EI_CLASS] == ELFCLASS32) return fail("kernel: ELF is 32-bit (ELFCLASS32), not a 64-bit kernel");
    if (file[EI_CLASS] != ELFCLASS64)
        return fail(fmt::format("kernel: ELF class {} at offset 4 is not ELFCLASS64", file[EI_CLASS]));
    if (file[EI_DATA] != ELFDATA2LSB) return fail("kernel: ELF is not little-endian (offset 5)");
    if (file[EI_VERSION] != EV_CURRENT)
        return fail(fmt::format("kernel: ELF version {} at offset 6 is not 1", file[EI_VERSION]));
    const auto eh = read_struct<Elf64_Ehdr>(file, 0);
    if (!eh) return fail(fmt::format("kernel: file is {} bytes, too small for an ELF64 header", file.size()));
    if (eh->e_machine != EM_X86_64)
        return fail(fmt::format("kernel: ELF machine {} (offset 0x12) is not x86-64 ({})", eh->e_machine,
                                EM_X86_64));
    if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
        return fail(fmt::format("kernel: ELF type {} (offset 0x10) is neither ET_EXEC nor ET_DYN", eh->e_type));
    if (eh->e_phnum == 0) return fail("kernel: ELF has no program headers");
    if (eh->e_phnum == PN_XNUM)
        return fail("kernel: ELF uses extended program header numbering (e_phnum 0xffff), not supported");
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return fail(fmt::format("kernel: ELF program header size {} (offset 0x36) is not {}", eh->e_phentsize,
                                sizeof(Elf64_Phdr)));
    const uint64_t ph_bytes = uint64_t(eh->e_phnum) * sizeof(Elf64_Phdr);  // at most 0xfffe * 56, no wrap
    if (!range_fits(eh->e_phoff, ph_bytes, file.size()))
        return fail(fmt::format("kernel: program headers [0x{:x}, +0x{:x}) lie outside the {}-byte file",
                                eh->e_phoff, ph_bytes, file.size()));

    ElfImage img;
    img.type = eh->e_type;
    img.entry = eh->e_entry;
    bool entry_loaded = false;
    for (size_t i = 0; i < eh->e_phnum; ++i) {
        const Elf64_Phdr ph = *read_struct<Elf64_Phdr>(file, eh->e_phoff + i * sizeof(Elf64_Phdr));
        if (ph.p_type == PT_LOAD) {
            if (!range_fits(ph.p_offset, ph.p_filesz, file.size()))
                return fail(fmt::format("kernel: PT_LOAD {} file bytes [0x{:x}, +0x{:x}) lie outside the {}-byte "
                                        "file",
                                        i, ph.p_offset, ph.p_filesz, file.size()));
            if (ph.p_filesz > ph.p_memsz)
                return fail(fmt::format("kernel: PT_LOAD {} has filesz 0x{:x} > memsz 0x{:x}", i, ph.p_filesz,
                                        ph.p_memsz));
            if (!checked_add(ph.p_paddr, ph.p_memsz) || !checked_add(ph.p_vaddr, ph.p_memsz))
                return fail(fmt::format("kernel: PT_LOAD {} at paddr 0x{:x} vaddr 0x{:x} + 0x{:x} wraps around", i,
                                        ph.p_paddr, ph.p_vaddr, ph.p_memsz));
            ElfSegment s;
            s.paddr = ph.p_paddr;
            s.vaddr = ph.p_vaddr;
            s.offset = ph.p_offset;
            s.filesz = ph.p_filesz;
            s.memsz = ph.p_memsz;
            s.flags = ph.p_flags;
            s.data = file.subspan(ph.p_offset, ph.p_filesz);
            const auto in = [&](uint64_t base) { return img.entry >= base && img.entry - base < ph.p_memsz; };
            if (in(ph.p_vaddr) || in(ph.p_paddr)) entry_loaded = true;
            img.segments.push_back(s);
        } else if (ph.p_type == PT_NOTE) {
            if (!range_fits(ph.p_offset, ph.p_filesz, file.size()))
                return fail(fmt::format("kernel: PT_NOTE {} [0x{:x}, +0x{:x}) lies outside the {}-byte file", i,
                                        ph.p_offset, ph.p_filesz, file.size()));
            const uint64_t align = ph.p_align == 8 ? 8 : 4;
            if (auto r = parse_notes(file.subspan(ph.p_offset, ph.p_filesz), align, i, img); !r)
                return std::unexpected(r.error());
        }
    }
    if (img.segments.empty()) return fail("kernel: ELF has no PT_LOAD segment");
    if (!entry_loaded)
        return fail(fmt::format("kernel: ELF entry 0x{:x} lies outside every PT_LOAD segment", img.entry));
    return img;
}

std::expected<void, std::string> check_segments_fit(const ElfImage& image, uint64_t mem_size) {
    const uint64_t ram_end = low_ram_end(mem_size);
    for (size_t i = 0; i < image.segments.size(); ++i) {
        const ElfSegment& s = image.segments[i];
        if (s.memsz == 0) continue;  // occupies nothing
        if (s.paddr < VIREO_HIGH_MEM || s.paddr > ram_end || s.memsz > ram_end - s.paddr)
            return fail(fmt::format("kernel: segment {} [0x{:x}, 0x{:x}) lies outside guest RAM [0x{:x}, 0x{:x}) "
                                    "(RAM below 1 MiB holds boot tables)",
                                    i, s.paddr, s.paddr + s.memsz, VIREO_HIGH_MEM, ram_end));
    }
    return {};
}

}  // namespace vireo
