#include "vmm/arch/x86/kernel_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vireo/layout.h"
#include "vireo/testguest_abi.h"
#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/kernel_cache.h"
#include "vmm/arch/x86/mptable.h"
#include "vmm/arch/x86/zero_page.h"
#include "vmm/kvm/unique_fd.h"
#include "vmm/log.h"

namespace vireo {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// Xen's PVH start info (xen/include/public/arch-x86/hvm/start_info.h, v1).
constexpr uint32_t kHvmStartMagic = 0x336ec578;
struct HvmStartInfo {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct HvmModlistEntry {
    uint64_t paddr, size, cmdline_paddr, reserved;
};
struct HvmMemmapEntry {
    uint64_t addr, size;
    uint32_t type, reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

}  // namespace

std::expected<std::vector<uint8_t>, std::string> read_boot_file(const std::string& what, const std::string& path,
                                                               uint64_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::unexpected(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return std::unexpected(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) return std::unexpected(fmt::format("{} {}: not a regular file", what, path));
    if (uint64_t(st.st_size) > limit)
        return std::unexpected(fmt::format("{} {}: {} MiB is larger than guest RAM (--mem {} MiB)", what, path,
                                           uint64_t(st.st_size) >> 20, limit >> 20));
    std::vector<uint8_t> data(size_t(st.st_size));
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
        if (n == 0) return std::unexpected(fmt::format("{} {}: file shrank while reading", what, path));
        done += size_t(n);
    }
    return data;
}

namespace {

// The parsers' messages start with "kernel: "; ours name the file instead.
std::string about(const std::string& path, const std::string& message) {
    std::string_view m = message;
    if (m.starts_with("kernel: ")) m.remove_prefix(8);
    return fmt::format("kernel {}: {}", path, m);
}

// A ring-3 guest runs identity-mapped: a segment whose virtual address is
// not its physical one would run code from the wrong place.
std::expected<void, std::string> check_identity_mapped(const ElfImage& elf) {
    for (const auto& s : elf.segments)
        if (s.vaddr != s.paddr)
            return std::unexpected(fmt::format("ring-3 image: segment at paddr {:#x} has vaddr {:#x}; the ring-3 protocol "
                                               "maps memory 1:1, so they must be equal", s.paddr, s.vaddr));
    return {};
}

bool is_elf(std::span<const uint8_t> f) { return f.size() >= 4 && std::memcmp(f.data(), "\x7f" "ELF", 4) == 0; }

// Copies each PT_LOAD segment to its physical address and zeroes the rest
// of its memory size (.bss).
std::expected<uint64_t, std::string> load_segments(const ElfImage& elf, const GuestMemory& mem) {
    uint64_t end = 0;
    for (const auto& s : elf.segments) {
        auto dst = mem.view(s.paddr, s.memsz);
        if (dst.empty() && s.memsz)
            return std::unexpected(fmt::format("kernel: segment at {:#x} (+{:#x}) is outside guest RAM", s.paddr, s.memsz));
        std::memcpy(dst.data(), s.data.data(), s.filesz);
        std::memset(dst.data() + s.filesz, 0, s.memsz - s.filesz);
        end = std::max(end, s.paddr + s.memsz);
    }
    return end;
}

std::expected<void, std::string> write_cmdline(const GuestMemory& mem, const std::string& cmdline, uint64_t max_len) {
    if (cmdline.size() > max_len)
        return std::unexpected(fmt::format("--cmdline: {} bytes is longer than the kernel accepts ({})", cmdline.size(), max_len));
    auto dst = mem.view(VIREO_CMDLINE_ADDR, cmdline.size() + 1);
    if (dst.empty()) return std::unexpected(std::string("--cmdline: does not fit in guest RAM"));
    std::memcpy(dst.data(), cmdline.data(), cmdline.size());
    dst[cmdline.size()] = 0;
    return {};
}

// MP table and ACPI tables: how a stock kernel finds CPUs, the I/O APIC,
// virtio-mmio devices and a clean power-off.
std::expected<void, std::string> write_platform_tables(const GuestMemory& mem, const BootInputs& in) {
    auto mp = mem.view(VIREO_MPTABLE_ADDR, 0xa0000 - VIREO_MPTABLE_ADDR);
    if (auto r = write_mptable(mp, VIREO_MPTABLE_ADDR, in.cpus); !r) return std::unexpected(r.error());
    AcpiConfig acpi;
    acpi.ncpus = in.cpus;
    acpi.virtio = in.virtio;
    auto dst = mem.view(VIREO_ACPI_ADDR, VIREO_ACPI_SIZE);
    if (auto r = write_acpi_tables(dst, VIREO_ACPI_ADDR, acpi); !r) return std::unexpected(r.error());
    return {};
}

std::expected<uint64_t, std::string> place_initrd(const GuestMemory& mem, const BootInputs& in, uint64_t addr_max,
                                                  uint64_t kernel_end) {
    if (in.initrd.empty()) return 0;
    auto addr = choose_initrd_addr(in.mem_size, in.initrd.size(), addr_max, kernel_end);
    if (!addr) return std::unexpected("--initrd: " + addr.error());
    if (!mem.write(*addr, in.initrd)) return std::unexpected(std::string("--initrd: does not fit in guest RAM"));
    return *addr;
}

std::expected<BootPlan, std::string> load_linux64(const KernelImage& image, const GuestMemory& mem,
                                                  const BootInputs& in) {
    BootPlan plan;
    plan.mode = EntryMode::Linux64;
    setup_header hdr = default_setup_header();
    uint64_t entry = 0;
    uint64_t initrd_max = 0x7fffffff;
    uint64_t cmdline_max = VIREO_CMDLINE_MAX - 1;
    if (image.bzimage) {
        hdr = image.bzimage->hdr;
        initrd_max = image.bzimage->initrd_addr_max;
        cmdline_max = std::min<uint64_t>(cmdline_max, image.bzimage->cmdline_size);
    }
    if (image.elf) {
        // A vmlinux (given, or unpacked from a bzImage): its own physical
        // layout, entered at startup_64 in 64-bit mode.
        auto end = load_segments(*image.elf, mem);
        if (!end) return std::unexpected(end.error());
        plan.kernel_end = *end;
        entry = image.elf->entry;
        if (entry >= 0xffffffff80000000ull)  // a virtual entry: translate through its segment
            for (const auto& s : image.elf->segments)
                if (entry >= s.vaddr && entry - s.vaddr < s.memsz) entry = s.paddr + (entry - s.vaddr);
        if (image.bzimage) plan.kernel_end = std::max(plan.kernel_end, image.bzimage->end_when_loaded_at(VIREO_KERNEL_ADDR));
    } else {
        const BzImage& bz = *image.bzimage;
        uint64_t load = bz.pref_address >= VIREO_HIGH_MEM ? bz.pref_address : VIREO_KERNEL_ADDR;
        if (!mem.write(load, bz.kernel))
            return std::unexpected(fmt::format("kernel {}: does not fit in guest RAM at {:#x}", image.path, load));
        plan.kernel_end = bz.end_when_loaded_at(load);
        entry = load + kBzImageEntry64Offset;
    }
    if (plan.kernel_end > low_ram_end(in.mem_size))
        return std::unexpected(fmt::format("kernel {}: needs RAM up to {} MiB; --mem is too small", image.path,
                                           (plan.kernel_end + (1 << 20) - 1) >> 20));
    if (auto r = write_cmdline(mem, in.cmdline, cmdline_max); !r) return std::unexpected(r.error());
    auto initrd = place_initrd(mem, in, initrd_max, plan.kernel_end);
    if (!initrd) return std::unexpected(initrd.error());
    plan.initrd_addr = *initrd;

    ZeroPageParams zp;
    zp.cmdline_addr = VIREO_CMDLINE_ADDR;
    zp.cmdline_size = uint32_t(in.cmdline.size());
    zp.initrd_addr = *initrd;
    zp.initrd_size = in.initrd.size();
    zp.e820 = build_e820(in.mem_size);
    zp.acpi_rsdp_addr = VIREO_ACPI_ADDR;
    if (auto r = write_zero_page(mem.view(VIREO_ZERO_PAGE_ADDR, kPage), hdr, zp); !r) return std::unexpected(r.error());
    if (auto r = write_platform_tables(mem, in); !r) return std::unexpected(r.error());
    if (auto r = write_boot_cpu_tables(mem, in.mem_size, EntryMode::Linux64); !r) return std::unexpected(r.error());
    plan.entries.push_back({EntryMode::Linux64, entry, VIREO_ZERO_PAGE_ADDR, 0, VIREO_BOOT_STACK});
    return plan;
}

std::expected<BootPlan, std::string> load_pvh(const KernelImage& image, const GuestMemory& mem, const BootInputs& in) {
    BootPlan plan;
    plan.mode = EntryMode::Pvh32;
    auto end = load_segments(*image.elf, mem);
    if (!end) return std::unexpected(end.error());
    plan.kernel_end = *end;
    if (auto r = write_cmdline(mem, in.cmdline, VIREO_CMDLINE_MAX - 1); !r) return std::unexpected(r.error());
    auto initrd = place_initrd(mem, in, 0xffffffffull, plan.kernel_end);
    if (!initrd) return std::unexpected(initrd.error());
    plan.initrd_addr = *initrd;

    // start info, then the module list, then the memory map, all in one page.
    auto page = mem.view(VIREO_PVH_INFO_ADDR, kPage);
    if (page.empty()) return std::unexpected(std::string("PVH: guest RAM too small"));
    std::memset(page.data(), 0, page.size());
    auto e820 = build_e820(in.mem_size);
    HvmStartInfo info{};
    info.magic = kHvmStartMagic;
    info.version = 1;
    info.cmdline_paddr = VIREO_CMDLINE_ADDR;
    info.rsdp_paddr = VIREO_ACPI_ADDR;
    size_t off = sizeof info;
    if (*initrd) {
        HvmModlistEntry mod{*initrd, in.initrd.size(), 0, 0};
        info.nr_modules = 1;
        info.modlist_paddr = VIREO_PVH_INFO_ADDR + off;
        std::memcpy(page.data() + off, &mod, sizeof mod);
        off += sizeof mod;
    }
    info.memmap_paddr = VIREO_PVH_INFO_ADDR + off;
    info.memmap_entries = uint32_t(e820.size());
    for (const auto& e : e820) {
        HvmMemmapEntry m{e.addr, e.size, e.type, 0};
        if (off + sizeof m > page.size()) return std::unexpected(std::string("PVH: memory map does not fit"));
        std::memcpy(page.data() + off, &m, sizeof m);
        off += sizeof m;
    }
    std::memcpy(page.data(), &info, sizeof info);
    if (auto r = write_platform_tables(mem, in); !r) return std::unexpected(r.error());
    if (auto r = write_boot_cpu_tables(mem, in.mem_size, EntryMode::Pvh32); !r) return std::unexpected(r.error());
    plan.entries.push_back({EntryMode::Pvh32, *image.elf->pvh_entry, 0, VIREO_PVH_INFO_ADDR, 0});
    return plan;
}

std::expected<BootPlan, std::string> load_ring3(const KernelImage& image, const GuestMemory& mem,
                                                const BootInputs& in) {
    BootPlan plan;
    plan.mode = EntryMode::Ring3;
    auto end = load_segments(*image.elf, mem);
    if (!end) return std::unexpected(end.error());
    plan.kernel_end = *end;
    if (auto r = write_cmdline(mem, in.cmdline, VIREO_CMDLINE_MAX - 1); !r) return std::unexpected(r.error());

    uint64_t stack = align_up(ring3_stack_size(*image.elf->ring3), 16);
    uint64_t top = low_ram_end(in.mem_size) & ~uint64_t(15);
    uint64_t stacks = stack * in.cpus;
    uint64_t free_start = align_up(plan.kernel_end, kPage);
    if (stacks >= top || top - stacks <= free_start)
        return std::unexpected(fmt::format("--mem: too small for the test guest and {} stacks of {} KiB", in.cpus, stack >> 10));

    vireo_boot_info info{};
    info.magic = VIREO_BOOT_INFO_MAGIC;
    info.version = 1;
    info.vcpu_count = in.cpus;
    info.mem_size = in.mem_size;
    info.tsc_khz = in.tsc_khz;
    info.cmdline_addr = VIREO_CMDLINE_ADDR;
    info.cmdline_len = uint32_t(in.cmdline.size());
    info.free_start = free_start;
    info.free_end = (top - stacks) & ~(kPage - 1);
    if (!in.virtio.empty()) {
        info.mmio_base = in.virtio.front().base;
        info.mmio_count = uint32_t(in.virtio.size());
    }
    if (!mem.write(VIREO_BOOT_INFO_ADDR, {reinterpret_cast<const uint8_t*>(&info), sizeof info}))
        return std::unexpected(std::string("test guest: guest RAM too small for the boot info"));
    if (auto r = write_platform_tables(mem, in); !r) return std::unexpected(r.error());
    if (auto r = write_boot_cpu_tables(mem, in.mem_size, EntryMode::Ring3); !r) return std::unexpected(r.error());
    for (unsigned i = 0; i < in.cpus; ++i)
        plan.entries.push_back({EntryMode::Ring3, image.elf->entry, VIREO_BOOT_INFO_ADDR, 0, top - i * stack});
    return plan;
}

}  // namespace

std::string KernelImage::describe() const {
    if (ring3()) return "vireo ring-3 ELF";
    if (bzimage && elf) return fmt::format("bzImage (protocol {}.{:02}), {} payload unpacked by vireo", bzimage->protocol >> 8,
                                           bzimage->protocol & 0xff, to_string(bzimage->compression));
    if (bzimage) return fmt::format("bzImage (protocol {}.{:02})", bzimage->protocol >> 8, bzimage->protocol & 0xff);
    if (elf && elf->pvh_entry) return "ELF64 with PVH entry";
    return "ELF64 (64-bit entry)";
}

std::expected<KernelImage, std::string> read_kernel_image(const std::string& path, uint64_t mem_size, bool unpack) {
    KernelImage image;
    image.path = path;
    auto data = read_boot_file("kernel", path, mem_size);
    if (!data) return std::unexpected(data.error());
    image.file = std::move(*data);
    if (image.file.empty()) return std::unexpected(fmt::format("kernel {}: file is empty", path));
    if (is_elf(image.file)) {
        auto elf = parse_elf64(image.file);
        if (!elf) return std::unexpected(about(path, elf.error()));
        if (auto r = check_segments_fit(*elf, mem_size); !r) return std::unexpected(about(path, r.error()));
        if (elf->ring3)
            if (auto r = check_identity_mapped(*elf); !r) return std::unexpected(about(path, r.error()));
        image.elf = std::move(*elf);
        return image;
    }
    auto bz = parse_bzimage(image.file);
    if (!bz) {
        size_t n = std::min<size_t>(image.file.size(), 4);
        std::string magic;
        for (size_t i = 0; i < n; ++i) magic += fmt::format("{:02x}", image.file[i]);
        return std::unexpected(about(path, fmt::format("not an ELF64 or bzImage kernel (first bytes {}): {}", magic,
                                                       std::string_view(bz.error()).substr(bz.error().starts_with("kernel: ") ? 8 : 0))));
    }
    image.bzimage = std::move(*bz);
    if (image.bzimage->end_when_loaded_at(VIREO_KERNEL_ADDR) > low_ram_end(mem_size))
        return std::unexpected(fmt::format("kernel {}: needs {} MiB of RAM to unpack itself; --mem is too small", path,
                                           (image.bzimage->end_when_loaded_at(VIREO_KERNEL_ADDR) >> 20) + 1));
    if (unpack && image.bzimage->compression == Compression::Xz) {
        auto cache = KernelCache::from_environment();
        std::optional<std::vector<uint8_t>> cached;
        if (cache) cached = cache->load(image.bzimage->payload, low_ram_end(mem_size));
        std::optional<ElfImage> elf;
        if (cached) {
            image.unpacked = std::move(*cached);
            if (auto parsed = parse_elf64(image.unpacked)) elf = std::move(*parsed);
        }
        if (!elf) {  // no cache, or an entry that does not parse: unpack
            auto t0 = std::chrono::steady_clock::now();
            auto vmlinux = decompress_payload(*image.bzimage, low_ram_end(mem_size));
            log_debug("kernel: unpacked the {} payload in {} ms", to_string(image.bzimage->compression),
                      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
            if (!vmlinux) return std::unexpected(about(path, vmlinux.error()));
            image.unpacked = std::move(*vmlinux);
            auto parsed = parse_elf64(image.unpacked);
            if (!parsed) return std::unexpected(about(path, "unpacked payload: " + parsed.error()));
            elf = std::move(*parsed);
            if (cache) cache->store(image.bzimage->payload, image.unpacked);
        }
        if (auto r = check_segments_fit(*elf, mem_size); !r) return std::unexpected(about(path, r.error()));
        image.elf = std::move(*elf);
    }
    return image;
}

std::expected<BootPlan, std::string> load_kernel(const KernelImage& image, const GuestMemory& mem,
                                                 const BootInputs& in) {
    if (image.ring3()) return load_ring3(image, mem, in);
    if (image.elf && !image.bzimage && image.elf->pvh_entry) return load_pvh(image, mem, in);
    return load_linux64(image, mem, in);
}

}  // namespace vireo
