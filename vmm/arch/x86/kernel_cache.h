// A cache of kernels vireo unpacked itself (a bzImage's xz payload -> the
// vmlinux ELF). Unpacking costs about 1 s natively and several seconds under
// nested emulation; a guest restarted or booted again from the same image
// should not pay it twice.
//
// Entries are named by a hash of the compressed payload and its size, so a
// changed kernel is a different entry; they are written atomically (temp file
// + rename). The cache is an optimisation only: any failure to read or write
// it is logged at debug level and vireo unpacks as if it were absent. A
// corrupted entry is caught by the ELF parser, which the caller runs anyway.
//
// Where: $VIREO_CACHE_DIR, else $XDG_CACHE_HOME/vireo, else $HOME/.cache/vireo.
// VIREO_CACHE_DIR=off disables it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vireo {

class KernelCache {
public:
    // The cache for this process's environment; nullopt if disabled or no
    // directory can be named.
    static std::optional<KernelCache> from_environment();
    explicit KernelCache(std::string dir) : dir_(std::move(dir)) {}

    std::optional<std::vector<uint8_t>> load(std::span<const uint8_t> payload, size_t max_size) const;
    void store(std::span<const uint8_t> payload, std::span<const uint8_t> unpacked) const;
    std::string entry_path(std::span<const uint8_t> payload) const;

private:
    std::string dir_;
};

}  // namespace vireo
