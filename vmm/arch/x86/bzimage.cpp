#include "vmm/arch/x86/bzimage.h"

#include <fmt/format.h>
#include <lzma.h>

#include <algorithm>
#include <cstring>

#include "vmm/arch/x86/bytes.h"

namespace vireo {

namespace {

using x86::get_le16;
using x86::get_le32;
using x86::range_fits;

// Offsets in the file (boot.rst, "THE REAL-MODE KERNEL HEADER").
constexpr size_t kHdrOffset = 0x1f1;
constexpr size_t kBootFlagOffset = 0x1fe;
constexpr size_t kJumpOffset = 0x200;
constexpr size_t kMagicOffset = 0x202;
constexpr size_t kVersionOffset = 0x206;
constexpr size_t kXloadflagsOffset = 0x236;
constexpr size_t kPayloadOffsetOffset = 0x248;
constexpr size_t kKernelAlignmentOffset = 0x230;
constexpr size_t kInitSizeOffset = 0x260;
// Protocol 2.12's header runs through handover_offset (0x264..0x267); a file
// shorter than that cannot hold the fields we rely on.
constexpr size_t kMinHeaderEnd = 0x268;
constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kBootFlag = 0xaa55;
constexpr size_t kSectorSize = 512;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMaxXzMemory = 256 * kMiB;

std::unexpected<std::string> fail(std::string msg) { return std::unexpected(std::move(msg)); }

bool starts_with(std::span<const uint8_t> data, std::initializer_list<uint8_t> magic) {
    return data.size() >= magic.size() && std::equal(magic.begin(), magic.end(), data.begin());
}

std::string hex_version(uint16_t v) { return fmt::format("{}.{:02}", v >> 8, v & 0xff); }

// Owns a liblzma decoder so every return path frees it.
struct XzDecoder {
    lzma_stream s = LZMA_STREAM_INIT;
    XzDecoder() = default;
    XzDecoder(const XzDecoder&) = delete;
    XzDecoder& operator=(const XzDecoder&) = delete;
    ~XzDecoder() { lzma_end(&s); }
};

std::string xz_error(lzma_ret r, uint64_t memlimit, lzma_stream* s) {
    switch (r) {
        case LZMA_MEMLIMIT_ERROR:
            return fmt::format("kernel: xz payload needs {} MiB of decoder memory, over the {} MiB limit",
                               (lzma_memusage(s) + kMiB - 1) / kMiB, memlimit / kMiB);
        case LZMA_MEM_ERROR: return "kernel: out of memory while decompressing the xz payload";
        case LZMA_FORMAT_ERROR: return "kernel: payload is not a valid xz stream (bad header)";
        case LZMA_OPTIONS_ERROR: return "kernel: xz payload uses filters or options liblzma does not support";
        case LZMA_DATA_ERROR: return fmt::format("kernel: xz payload is corrupt (at input byte {})", s->total_in);
        case LZMA_BUF_ERROR: return fmt::format("kernel: xz payload is truncated (after {} input bytes)", s->total_in);
        default: return fmt::format("kernel: xz decoder failed (liblzma error {})", int(r));
    }
}

std::expected<std::vector<uint8_t>, std::string> unxz(std::span<const uint8_t> in, size_t max_out) {
    // Bound the limit so that `cap` below cannot overflow.
    max_out = std::min<size_t>(max_out, SIZE_MAX / 2);
    const uint64_t memlimit = std::min<uint64_t>(kMaxXzMemory, std::max<uint64_t>(max_out, kMiB) + kMiB);

    XzDecoder dec;
    lzma_stream* strm = &dec.s;
    if (lzma_ret r = lzma_stream_decoder(strm, memlimit, 0); r != LZMA_OK) return fail(xz_error(r, memlimit, strm));

    // One byte more than allowed: producing it proves the output is too big
    // without a second pass.
    const size_t cap = max_out + 1;
    // Linux appends the uncompressed size as a 4-byte trailer; use it to
    // size the buffer once. It is hostile, so it is only a hint: within the
    // cap and within a ratio no kernel reaches (real ones are about 8:1), so
    // a lying trailer cannot make us zero gigabytes up front.
    size_t initial = std::min<size_t>(cap, 4 * kMiB);
    if (in.size() >= 4) {
        const size_t hint = get_le32(in.data() + in.size() - 4);
        const size_t plausible = std::min<size_t>(in.size(), SIZE_MAX / 64) * 32 + 4 * kMiB;
        if (hint > 0 && hint < cap) initial = std::min(hint + 1, plausible);
    }
    std::vector<uint8_t> out(initial);

    strm->next_in = in.data();
    strm->avail_in = in.size();
    strm->next_out = out.data();
    strm->avail_out = out.size();
    for (;;) {
        const lzma_ret r = lzma_code(strm, LZMA_FINISH);
        if (r == LZMA_STREAM_END) break;
        if (r != LZMA_OK) return fail(xz_error(r, memlimit, strm));
        if (strm->avail_out == 0) {
            const size_t produced = out.size();
            if (produced >= cap)
                return fail(fmt::format("kernel: decompressed payload is larger than the {}-byte limit", max_out));
            out.resize(std::min(cap, std::max(produced * 2, produced + 1)));
            strm->next_out = out.data() + produced;
            strm->avail_out = out.size() - produced;
        }
    }
    const uint64_t produced = strm->total_out;
    if (produced > max_out)
        return fail(fmt::format("kernel: decompressed payload is larger than the {}-byte limit", max_out));
    out.resize(produced);

    const uint64_t rest = in.size() - strm->total_in;
    if (rest == 4) {
        const uint32_t trailer = get_le32(in.data() + in.size() - 4);
        if (trailer != uint32_t(produced))
            return fail(fmt::format("kernel: xz payload decoded to {} bytes but its size trailer says {}", produced,
                                    trailer));
    } else if (rest != 0) {
        return fail(fmt::format("kernel: {} unexpected bytes follow the xz stream in the payload", rest));
    }
    return out;
}

}  // namespace

std::string_view to_string(Compression c) {
    switch (c) {
        case Compression::None: return "uncompressed";
        case Compression::Gzip: return "gzip";
        case Compression::Bzip2: return "bzip2";
        case Compression::Lzma: return "lzma";
        case Compression::Xz: return "xz";
        case Compression::Lzo: return "lzo";
        case Compression::Lz4: return "lz4";
        case Compression::Zstd: return "zstd";
        case Compression::Unknown: break;
    }
    return "unknown";
}

Compression detect_compression(std::span<const uint8_t> p) {
    // Magics as the kernel's own decompressors and arch/x86/boot/compressed
    // produce them; lz4 is the legacy frame format Linux uses.
    if (starts_with(p, {0x7f, 'E', 'L', 'F'})) return Compression::None;
    if (starts_with(p, {0x1f, 0x8b})) return Compression::Gzip;
    if (starts_with(p, {0xfd, '7', 'z', 'X', 'Z', 0x00})) return Compression::Xz;
    if (starts_with(p, {0x28, 0xb5, 0x2f, 0xfd})) return Compression::Zstd;
    if (starts_with(p, {'B', 'Z', 'h'})) return Compression::Bzip2;
    if (starts_with(p, {0x02, 0x21, 0x4c, 0x18})) return Compression::Lz4;
    if (starts_with(p, {0x89, 'L', 'Z', 'O'})) return Compression::Lzo;
    if (starts_with(p, {0x5d, 0x00, 0x00})) return Compression::Lzma;
    return Compression::Unknown;
}

uint64_t BzImage::end_when_loaded_at(uint64_t load_addr) const {
    const uint64_t need = std::max<uint64_t>(init_size, kernel.size());
    return x86::checked_add(load_addr, need).value_or(UINT64_MAX);
}

std::expected<BzImage, std::string> parse_bzimage(std::span<const uint8_t> file) {
    if (file.empty()) return fail("kernel: file is empty");
    if (file.size() < kMinHeaderEnd)
        return fail(fmt::format("kernel: file is {} bytes, too small for a bzImage setup header (needs 0x{:x})",
                                file.size(), kMinHeaderEnd));
    const uint8_t* f = file.data();
    if (uint16_t flag = get_le16(f + kBootFlagOffset); flag != kBootFlag)
        return fail(fmt::format("kernel: boot flag is 0x{:04x}, not 0xaa55 (offset 0x1fe); not a bzImage", flag));
    if (get_le32(f + kMagicOffset) != kHdrSMagic)
        return fail("kernel: bzImage header magic is not HdrS (offset 0x202)");
    const uint16_t version = get_le16(f + kVersionOffset);
    if (version < kMinBootProtocol)
        return fail(fmt::format("kernel: boot protocol {} is too old (offset 0x206); vireo needs {} or newer",
                                hex_version(version), hex_version(kMinBootProtocol)));
    // boot.rst: the header ends at 0x202 plus the jump's displacement byte.
    const size_t header_end = kMagicOffset + f[kJumpOffset + 1];
    if (header_end < kMinHeaderEnd)
        return fail(fmt::format("kernel: setup header ends at 0x{:x} (jump at 0x200), before the protocol {} "
                                "fields that end at 0x{:x}",
                                header_end, hex_version(version), kMinHeaderEnd));

    BzImage img{};
    // Fields past the header's end belong to a newer protocol than the file
    // speaks: leave them zero rather than copy setup code into them.
    const size_t copy =
        std::min({header_end, kHdrOffset + sizeof(setup_header), file.size()}) - kHdrOffset;
    std::memset(&img.hdr, 0, sizeof img.hdr);
    std::memcpy(&img.hdr, f + kHdrOffset, copy);
    const setup_header& h = img.hdr;

    img.protocol = version;
    img.xloadflags = h.xloadflags;
    if (!(h.xloadflags & XLF_KERNEL_64))
        return fail(fmt::format("kernel: bzImage is not 64-bit-capable (XLF_KERNEL_64 clear in xloadflags "
                                "0x{:04x}, offset 0x{:x})",
                                h.xloadflags, kXloadflagsOffset));

    const uint64_t setup_sects = h.setup_sects == 0 ? 4 : h.setup_sects;  // boot.rst: 0 means 4
    const uint64_t setup_bytes = (setup_sects + 1) * kSectorSize;
    if (setup_bytes >= file.size())
        return fail(fmt::format("kernel: setup code ({} sectors, offset 0x1f1) runs to 0x{:x}, past the end of "
                                "the {}-byte file; no protected-mode kernel",
                                setup_sects, setup_bytes, file.size()));
    img.kernel = file.subspan(setup_bytes);
    const uint64_t sys_bytes = uint64_t(h.syssize) * 16;  // syssize counts 16-byte paragraphs
    if (sys_bytes > img.kernel.size())
        return fail(fmt::format("kernel: protected-mode kernel is truncated: syssize (offset 0x1f4) says 0x{:x} "
                                "bytes, the file has 0x{:x} after the setup code",
                                sys_bytes, img.kernel.size()));

    if (h.payload_length == 0 || !range_fits(h.payload_offset, h.payload_length, img.kernel.size()))
        return fail(fmt::format("kernel: payload [0x{:x}, +0x{:x}) (offset 0x{:x}) is empty or outside the "
                                "0x{:x}-byte protected-mode kernel",
                                h.payload_offset, h.payload_length, kPayloadOffsetOffset, img.kernel.size()));
    img.payload = img.kernel.subspan(h.payload_offset, h.payload_length);
    img.compression = detect_compression(img.payload);

    img.relocatable = h.relocatable_kernel != 0;
    img.kernel_alignment = h.kernel_alignment;
    if (img.relocatable && (h.kernel_alignment == 0 || (h.kernel_alignment & (h.kernel_alignment - 1)) != 0))
        return fail(fmt::format("kernel: kernel_alignment 0x{:x} (offset 0x{:x}) is not a power of two",
                                h.kernel_alignment, kKernelAlignmentOffset));
    img.init_size = h.init_size;
    if (img.init_size == 0)
        return fail(fmt::format("kernel: init_size is 0 (offset 0x{:x})", kInitSizeOffset));
    img.pref_address = h.pref_address;
    img.initrd_addr_max = h.initrd_addr_max;
    img.cmdline_size = h.cmdline_size;
    return img;
}

std::expected<std::vector<uint8_t>, std::string> decompress_payload(const BzImage& image, size_t max_out) {
    switch (image.compression) {
        case Compression::None:
            if (image.payload.size() > max_out)
                return fail(fmt::format("kernel: uncompressed payload is {} bytes, over the {}-byte limit",
                                        image.payload.size(), max_out));
            return std::vector<uint8_t>(image.payload.begin(), image.payload.end());
        case Compression::Xz: return unxz(image.payload, max_out);
        default:
            return fail(fmt::format("kernel: payload is {}-compressed; vireo unpacks only xz, so boot this kernel "
                                    "as a bzImage and let it decompress itself",
                                    to_string(image.compression)));
    }
}

}  // namespace vireo
