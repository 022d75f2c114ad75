// libFuzzer target: kernel images are untrusted files, so the bzImage and
// ELF parsers and the payload decompressor must survive any bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "vmm/arch/x86/bzimage.h"
#include "vmm/arch/x86/elf_kernel.h"

namespace {
// Small enough that a run never spends its time inflating a real-sized
// kernel, big enough to let real xz streams decode.
constexpr size_t kMaxOut = 1u << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> file(data, size);

    if (auto elf = vireo::parse_elf64(file)) {
        // Touch what a loader would read: every span must lie inside `file`.
        volatile uint8_t sink = 0;
        for (const auto& s : elf->segments)
            if (!s.data.empty()) sink = uint8_t(sink + s.data.front() + s.data.back());
        (void)vireo::check_segments_fit(*elf, 256u << 20);
        (void)elf->paddr_end();
    }

    if (auto bz = vireo::parse_bzimage(file)) {
        volatile uint8_t sink = 0;
        if (!bz->payload.empty()) sink = uint8_t(bz->payload.front() + bz->payload.back());
        if (!bz->kernel.empty()) sink = uint8_t(sink + bz->kernel.back());
        (void)bz->end_when_loaded_at(0x1000000);
        if (auto out = vireo::decompress_payload(*bz, kMaxOut)) (void)vireo::parse_elf64(*out);
    }
    return 0;
}
