// Host-native baselines for tests/bench/bench-virtio, measured in the same
// run as the guest side:
//
//   virtio_native randread FILE SECONDS QD BS   random BS reads, QD in flight
//   virtio_native seqread  FILE SECONDS QD BS   sequential BS reads, QD in flight
//       io_uring with O_DIRECT, like virtio-blk with ,direct; prints
//       "ops=N us=N iops=N mibps=X"
//   virtio_native reclaim MIB CHUNK_KIB
//       touches MIB of a memfd mapping (like guest RAM), then punches it out
//       in CHUNK_KIB holes (as the balloon does with merged page runs) and
//       prints "ms=X" from the first hole until RssShmem fell by 90 %.
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int usage() {
    std::fprintf(stderr, "usage: virtio_native randread|seqread FILE SECONDS QD BS | reclaim MIB CHUNK_KIB\n");
    return 2;
}

int read_bench(bool random, const char* path, double seconds, unsigned qd, uint64_t bs) {
    int fd = ::open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        std::perror(path);
        return 1;
    }
    uint64_t size = uint64_t(::lseek(fd, 0, SEEK_END));
    uint64_t blocks = size / bs;
    if (!blocks || qd == 0 || qd > 1024) return usage();
    io_uring ring;
    if (int r = io_uring_queue_init(qd * 2, &ring, 0); r < 0) {
        std::fprintf(stderr, "io_uring_queue_init: %s\n", std::strerror(-r));
        return 1;
    }
    std::vector<void*> bufs(qd);
    for (auto& b : bufs)
        if (posix_memalign(&b, 4096, bs) != 0) return 1;
    uint64_t seed = uint64_t(Clock::now().time_since_epoch().count()) | 1, next = 0, done = 0;
    auto pick = [&] {
        if (!random) return (next++ % blocks) * bs;
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        return (seed % blocks) * bs;
    };
    auto submit = [&](unsigned slot) {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        io_uring_prep_read(s, fd, bufs[slot], unsigned(bs), pick());
        io_uring_sqe_set_data64(s, slot);
    };
    auto t0 = Clock::now();
    auto end = t0 + std::chrono::duration<double>(seconds);
    for (unsigned i = 0; i < qd; ++i) submit(i);
    unsigned inflight = qd;
    bool stopping = false;
    while (inflight) {
        io_uring_submit_and_wait(&ring, 1);
        io_uring_cqe* cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != int(bs)) {
                std::fprintf(stderr, "read: %s\n", cqe->res < 0 ? std::strerror(-cqe->res) : "short read");
                return 1;
            }
            ++n;
            ++done;
            --inflight;
            if (!stopping) {
                submit(unsigned(cqe->user_data));
                ++inflight;
            }
        }
        io_uring_cq_advance(&ring, n);
        if (!stopping && Clock::now() >= end) stopping = true;
    }
    double us = double(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    std::printf("ops=%llu us=%.0f iops=%.0f mibps=%.3f\n", (unsigned long long)done, us, double(done) * 1e6 / us,
                double(done) * double(bs) / (1 << 20) * 1e6 / us);
    return 0;
}

long rss_shmem_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("RssShmem:", 0) == 0) return std::stol(line.substr(9));
    return -1;
}

int reclaim(uint64_t mib, uint64_t chunk_kib) {
    uint64_t len = mib << 20, chunk = chunk_kib << 10;
    if (!len || !chunk || len % chunk) return usage();
    int fd = ::memfd_create("virtio-native-reclaim", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, off_t(len)) != 0) return 1;
    auto* p = static_cast<uint8_t*>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0));
    if (p == MAP_FAILED) return 1;
    for (uint64_t off = 0; off < len; off += 4096) p[off] = 1;
    long before = rss_shmem_kib();
    auto t0 = Clock::now();
    for (uint64_t off = 0; off < len; off += chunk)
        if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off), off_t(chunk)) != 0) {
            std::perror("fallocate");
            return 1;
        }
    long want = before - long(len / 1024 * 9 / 10);
    while (rss_shmem_kib() > want) {
    }
    double ms = double(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()) / 1000.0;
    std::printf("ms=%.3f before_kib=%ld after_kib=%ld\n", ms, before, rss_shmem_kib());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string mode = argv[1];
    if ((mode == "randread" || mode == "seqread") && argc == 6)
        return read_bench(mode == "randread", argv[2], std::atof(argv[3]), unsigned(std::atoi(argv[4])),
                          std::strtoull(argv[5], nullptr, 10));
    if (mode == "reclaim" && argc == 4) return reclaim(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10));
    return usage();
}
