// Linux bzImage files (Documentation/x86/boot.rst, the "Linux/x86 boot
// protocol"): the header parser and the native payload decompressor.
//
// vireo boots a bzImage with the 64-bit boot protocol: it loads the
// protected-mode kernel, fills a zero page (zero_page.h) and jumps to the
// 64-bit entry. Or, faster under nested emulation, it unpacks the compressed
// vmlinux payload itself and loads that ELF (elf_kernel.h), so the guest
// never runs its own decompressor.
#pragma once

#include <asm/bootparam.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/arch/x86/zero_page.h"

namespace vireo {

// How the payload (vmlinux) is compressed, from its magic bytes.
enum class Compression { None, Gzip, Bzip2, Lzma, Xz, Lzo, Lz4, Zstd, Unknown };
std::string_view to_string(Compression c);
// Classifies the first bytes of a payload. `None` means it is already an ELF.
Compression detect_compression(std::span<const uint8_t> payload);

// Protocol 2.12 added xloadflags, which is how we know the kernel has a
// 64-bit entry point; older kernels are not worth supporting.
inline constexpr uint16_t kMinBootProtocol = 0x020c;
// The 64-bit entry point is this far into the loaded protected-mode kernel.
inline constexpr uint64_t kBzImageEntry64Offset = 0x200;

// A parsed bzImage. The spans point into the caller's file buffer and live
// as long as it does.
struct BzImage {
    setup_header hdr;                 // as in the file; zero past the header's end
    uint16_t protocol = 0;            // hdr.version, e.g. 0x020f for 2.15
    std::span<const uint8_t> kernel;  // the protected-mode kernel (load this)
    uint64_t pref_address = 0;        // where a non-relocatable kernel must go
    uint32_t init_size = 0;           // bytes the kernel needs from its load address
    uint32_t kernel_alignment = 0;    // alignment a relocatable kernel needs
    bool relocatable = false;
    uint32_t initrd_addr_max = 0;     // highest address the initrd may occupy
    uint32_t cmdline_size = 0;        // longest command line (without NUL)
    uint16_t xloadflags = 0;
    std::span<const uint8_t> payload; // the compressed vmlinux inside `kernel`
    Compression compression = Compression::Unknown;

    // One past the last byte the kernel uses when loaded at `load_addr`: it
    // decompresses in place, so that is init_size, not the file size.
    uint64_t end_when_loaded_at(uint64_t load_addr) const;
};

// Parses and checks a bzImage; never reads outside `file`. Errors are one
// line: what is wrong and at which offset.
std::expected<BzImage, std::string> parse_bzimage(std::span<const uint8_t> file);

// Unpacks the payload into the vmlinux ELF image. Supports xz (the x86 BCJ
// filter included, as Linux builds it) and uncompressed payloads; other
// kinds are an error naming the kind. Output beyond `max_out` bytes is an
// error, as is decoder memory beyond max(max_out, 1 MiB) + 1 MiB, capped at
// 256 MiB: a dictionary larger than the output cannot be needed.
std::expected<std::vector<uint8_t>, std::string> decompress_payload(const BzImage& image, size_t max_out);

}  // namespace vireo
