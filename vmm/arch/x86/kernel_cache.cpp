#include "vmm/arch/x86/kernel_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "vmm/kvm/unique_fd.h"
#include "vmm/log.h"

namespace vireo {

namespace {

uint64_t fnv1a64(std::span<const uint8_t> data) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t b : data) {
        h ^= b;
        h *= 0x100000001b3ull;
    }
    return h;
}

bool make_dirs(const std::string& path) {
    for (size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        std::string prefix = path.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return false;
    }
    return true;
}

}  // namespace

std::optional<KernelCache> KernelCache::from_environment() {
    if (const char* dir = std::getenv("VIREO_CACHE_DIR"); dir && *dir) {
        if (std::string_view(dir) == "off") return std::nullopt;
        return KernelCache(dir);
    }
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return KernelCache(std::string(xdg) + "/vireo");
    if (const char* home = std::getenv("HOME"); home && *home) return KernelCache(std::string(home) + "/.cache/vireo");
    return std::nullopt;
}

std::string KernelCache::entry_path(std::span<const uint8_t> payload) const {
    return fmt::format("{}/vmlinux-{:016x}-{}", dir_, fnv1a64(payload), payload.size());
}

std::optional<std::vector<uint8_t>> KernelCache::load(std::span<const uint8_t> payload, size_t max_size) const {
    std::string path = entry_path(payload);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || uint64_t(st.st_size) > max_size)
        return std::nullopt;
    std::vector<uint8_t> data(size_t(st.st_size));
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_debug("kernel cache: {}: short read, ignoring the entry", path);
            return std::nullopt;
        }
        done += size_t(n);
    }
    log_debug("kernel cache: using {}", path);
    return data;
}

void KernelCache::store(std::span<const uint8_t> payload, std::span<const uint8_t> unpacked) const {
    if (!make_dirs(dir_)) {
        log_debug("kernel cache: cannot create {}: {}", dir_, std::strerror(errno));
        return;
    }
    std::string path = entry_path(payload);
    std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
        log_debug("kernel cache: cannot write {}: {}", tmp, std::strerror(errno));
        return;
    }
    size_t done = 0;
    while (done < unpacked.size()) {
        ssize_t n = ::write(fd.get(), unpacked.data() + done, unpacked.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_debug("kernel cache: writing {}: {}", tmp, std::strerror(errno));
            ::unlink(tmp.c_str());
            return;
        }
        done += size_t(n);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace vireo
