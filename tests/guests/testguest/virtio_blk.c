/* virtio-blk from ring 3, polled, and the workloads that use it:
 *
 *   blk-rw          writes a pattern over sectors [start, start+sectors),
 *                   FLUSHes, reads it back and verifies it; test-exit 1 on
 *                   a mismatch or an I/O error. Options: sectors= (2048),
 *                   start= (0), seed= (0x5eed), chunk= KiB per request (64),
 *                   qd= (8), indirect=1. The pattern of the 8-byte word at
 *                   disk byte offset o is (o * 0x9e3779b97f4a7c15) ^ seed,
 *                   so a host test can check the image after vireo exits.
 *   blk-ro          expects the device to offer RO and a write to fail with
 *                   IOERR while a read succeeds.
 *   blk-randread:S  4 KiB (bs=) random reads for S seconds, qd= (32) in
 *                   flight; prints IOPS.
 *   blk-seqread:S   1 MiB (bs=) sequential reads for S seconds, qd= (4);
 *                   prints MiB/s.
 * All print the number of notify writes (vCPU exits) they needed. */
#include "arch.h"
#include "guest.h"
#include "virtio.h"

#define TAG "vireo testguest: "

#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_F_RO 5
#define VBLK_F_MQ 12
#define MAX_QUEUES 16
#define MAX_SLOTS 256

struct blk_req {
    uint32_t type, reserved;
    uint64_t sector;
    uint8_t status;
    uint8_t busy;
    uint16_t queue;
    uint32_t bytes;
    uint64_t data;  /* guest address of the data buffer */
    uint64_t tag;   /* the workload's own */
};

struct blk {
    struct virtio_dev dev;
    struct virtq vq[MAX_QUEUES];
    unsigned nq;
    uint64_t capacity; /* sectors */
    bool ro;
    struct blk_req *reqs;   /* MAX_SLOTS, in guest memory (the device reads headers, writes status) */
    int16_t head_to_slot[MAX_QUEUES][1024];
    unsigned inflight;
    uint64_t ioerrs;
};

static struct blk the_blk;

static bool blk_init(struct blk *b, bool want_indirect)
{
    memset(b, 0, sizeof *b);
    if (!virtio_find(2, 0, &b->dev)) {
        cprintf(TAG "blk: no virtio-blk device (start vireo with --disk)\n");
        return false;
    }
    uint64_t wanted = VBIT(VF_VERSION_1) | VBIT(VF_EVENT_IDX) | VBIT(VF_INDIRECT_DESC) | VBIT(VBLK_F_RO) | VBIT(VBLK_F_MQ);
    if (!virtio_negotiate(&b->dev, wanted, VBIT(VF_VERSION_1), "blk")) return false;
    b->ro = b->dev.features & VBIT(VBLK_F_RO);
    b->capacity = vconfig_read64(&b->dev, 0);
    b->nq = 1;
    if (b->dev.features & VBIT(VBLK_F_MQ)) {
        b->nq = vmmio_read(&b->dev, VMMIO_CONFIG + 32) >> 16; /* num_queues: le16 at 34 */
        if (b->nq < 1) b->nq = 1;
        if (b->nq > MAX_QUEUES) b->nq = MAX_QUEUES;
    }
    for (unsigned q = 0; q < b->nq; q++)
        if (!virtq_init(&b->dev, &b->vq[q], (uint16_t)q, 1024, want_indirect ? 4 : 0)) return false;
    b->reqs = guest_alloc(sizeof(struct blk_req) * MAX_SLOTS);
    if (!b->reqs) return false;
    for (unsigned q = 0; q < MAX_QUEUES; q++)
        for (unsigned i = 0; i < 1024; i++) b->head_to_slot[q][i] = -1;
    virtio_driver_ok(&b->dev);
    return true;
}

/* Queues request `slot` (fields already set); false if the ring is full. */
static bool blk_submit(struct blk *b, unsigned slot)
{
    struct blk_req *r = &b->reqs[slot];
    struct virtq *q = &b->vq[r->queue];
    struct vbuf bufs[3];
    unsigned n = 0, n_out;
    bufs[n++] = (struct vbuf){(uintptr_t)r, 16};
    if (r->type == VBLK_T_OUT && r->bytes) bufs[n++] = (struct vbuf){r->data, r->bytes};
    n_out = n;
    if ((r->type == VBLK_T_IN || r->type == VBLK_T_GET_ID) && r->bytes) bufs[n++] = (struct vbuf){r->data, r->bytes};
    bufs[n++] = (struct vbuf){(uintptr_t)&r->status, 1};
    r->status = 0xff;
    int head = virtq_add(q, bufs, n_out, n - n_out);
    if (head < 0) return false;
    b->head_to_slot[r->queue][head] = (int16_t)slot;
    r->busy = 1;
    b->inflight++;
    return true;
}

static void blk_kick_all(struct blk *b)
{
    for (unsigned q = 0; q < b->nq; q++) virtq_kick(&b->vq[q]);
}

/* Reaps one completion from any queue: its slot, or -1 if none yet. */
static int blk_reap(struct blk *b)
{
    for (unsigned q = 0; q < b->nq; q++) {
        uint32_t head, len;
        if (!virtq_get(&b->vq[q], &head, &len)) continue;
        int slot = b->head_to_slot[q][head];
        if (slot < 0) panic("blk: completion for unknown head %u on queue %u", head, q);
        b->head_to_slot[q][head] = -1;
        b->reqs[slot].busy = 0;
        b->inflight--;
        if (b->reqs[slot].status != VBLK_S_OK) b->ioerrs++;
        return slot;
    }
    return -1;
}

/* Waits for one completion (polling; gives up after 10 s: a lost request
 * is a device bug we must report, not hang on). */
static int blk_wait(struct blk *b)
{
    uint64_t deadline = rdtsc() + us_to_tsc(10000000);
    for (;;) {
        int slot = blk_reap(b);
        if (slot >= 0) return slot;
        if (rdtsc() > deadline) {
            cprintf(TAG "blk: no completion in 10 s (%u in flight)\n", b->inflight);
            test_exit(GUEST_EXIT_FAILED);
        }
        cpu_relax();
    }
}

static uint64_t notifies(const struct blk *b)
{
    uint64_t n = 0;
    for (unsigned q = 0; q < b->nq; q++) n += b->vq[q].notifies;
    return n;
}

/* One synchronous request. */
static uint8_t blk_do(struct blk *b, uint32_t type, uint64_t sector, uint64_t data, uint32_t bytes)
{
    struct blk_req *r = &b->reqs[0];
    r->type = type;
    r->sector = sector;
    r->data = data;
    r->bytes = bytes;
    r->queue = 0;
    if (!blk_submit(b, 0)) panic("blk: ring full with nothing in flight");
    blk_kick_all(b);
    blk_wait(b);
    return r->status;
}

static uint64_t pattern(uint64_t off, uint64_t seed) { return (off * 0x9e3779b97f4a7c15ull) ^ seed; }

static void print_id(struct blk *b)
{
    char *id = guest_alloc(PAGE_SIZE);
    if (!id) return;
    if (blk_do(b, VBLK_T_GET_ID, 0, (uintptr_t)id, 20) == VBLK_S_OK) {
        id[20] = 0;
        cprintf(TAG "blk: serial '%s', %lu sectors (%lu MiB), %u queue(s)%s\n", id, (unsigned long)b->capacity,
                (unsigned long)(b->capacity >> 11), b->nq, b->ro ? ", read-only" : "");
    } else {
        cprintf(TAG "blk: GET_ID failed\n");
    }
}

/* ------------------------------------------------------------ blk-rw */
int blk_rw_run(const char *arg)
{
    (void)arg;
    struct blk *b = &the_blk;
    if (!blk_init(b, opt_u64("indirect", 0) != 0)) return GUEST_EXIT_FAILED;
    print_id(b);
    uint64_t sectors = opt_u64("sectors", 2048), start = opt_u64("start", 0), seed = opt_u64("seed", 0x5eed);
    uint64_t chunk = opt_u64("chunk", 64) * 1024, qd = opt_u64("qd", 8);
    if (!chunk || chunk % 512 || chunk > 4 * MIB) chunk = 64 * 1024;
    if (!qd || qd > 64) qd = 8;
    if (start > b->capacity || sectors > b->capacity - start) {
        cprintf(TAG "blk-rw: sectors [%lu, +%lu) are beyond the disk's %lu\n", (unsigned long)start,
                (unsigned long)sectors, (unsigned long)b->capacity);
        return GUEST_EXIT_FAILED;
    }
    uint8_t *bufs = guest_alloc(qd * chunk);
    if (!bufs) {
        cprintf(TAG "blk-rw: no memory for %lu buffers of %lu KiB\n", (unsigned long)qd, (unsigned long)(chunk >> 10));
        return GUEST_EXIT_FAILED;
    }
    uint64_t t0 = rdtsc(), total = sectors * 512;
    for (int pass = 0; pass < 2; pass++) {
        bool writing = pass == 0;
        uint64_t next = 0, done = 0;
        unsigned rr = 0;
        while (done < total) {
            /* Fill every free slot, round-robin over the queues. */
            while (next < total && b->inflight < qd) {
                unsigned slot = 0;
                while (b->reqs[slot].busy) slot++;
                struct blk_req *r = &b->reqs[slot];
                uint64_t len = total - next < chunk ? total - next : chunk;
                r->type = writing ? VBLK_T_OUT : VBLK_T_IN;
                r->sector = start + next / 512;
                r->bytes = (uint32_t)len;
                r->data = (uintptr_t)(bufs + slot * chunk);
                r->queue = (uint16_t)(rr++ % b->nq);
                r->tag = next;
                uint64_t *w = (uint64_t *)(uintptr_t)r->data;
                if (writing)
                    for (uint64_t i = 0; i < len / 8; i++) w[i] = pattern(start * 512 + next + i * 8, seed);
                else
                    memset(w, 0, len);
                if (!blk_submit(b, slot)) break;
                next += len;
            }
            blk_kick_all(b);
            int slot = blk_wait(b);
            struct blk_req *r = &b->reqs[slot];
            if (r->status != VBLK_S_OK) {
                cprintf(TAG "blk-rw: %s of sector %lu failed with status %u\n", writing ? "write" : "read",
                        (unsigned long)r->sector, r->status);
                return GUEST_EXIT_FAILED;
            }
            if (!writing) {
                const uint64_t *w = (const uint64_t *)(uintptr_t)r->data;
                for (uint64_t i = 0; i < r->bytes / 8; i++) {
                    uint64_t off = start * 512 + r->tag + i * 8, want = pattern(off, seed);
                    if (w[i] != want) {
                        cprintf(TAG "blk-rw: mismatch at disk byte %lu: wrote 0x%lx, read 0x%lx\n",
                                (unsigned long)off, (unsigned long)want, (unsigned long)w[i]);
                        return GUEST_EXIT_FAILED;
                    }
                }
            }
            done += r->bytes;
        }
        if (writing) {
            uint8_t st = blk_do(b, VBLK_T_FLUSH, 0, 0, 0);
            if (st != VBLK_S_OK) {
                cprintf(TAG "blk-rw: FLUSH failed with status %u\n", st);
                return GUEST_EXIT_FAILED;
            }
        }
    }
    cprintf(TAG "blk-rw: wrote, flushed and verified %lu sectors at %lu (seed 0x%lx) in %lu ms, %lu notifies\n",
            (unsigned long)sectors, (unsigned long)start, (unsigned long)seed,
            (unsigned long)(tsc_to_us(rdtsc() - t0) / 1000), (unsigned long)notifies(b));
    return 0;
}

/* ------------------------------------------------------------ blk-ro */
int blk_ro_run(const char *arg)
{
    (void)arg;
    struct blk *b = &the_blk;
    if (!blk_init(b, false)) return GUEST_EXIT_FAILED;
    print_id(b);
    uint8_t *buf = guest_alloc(PAGE_SIZE);
    if (!buf) return GUEST_EXIT_FAILED;
    memset(buf, 0xa5, PAGE_SIZE);
    uint8_t w = blk_do(b, VBLK_T_OUT, 0, (uintptr_t)buf, 4096);
    uint8_t r = blk_do(b, VBLK_T_IN, 0, (uintptr_t)buf, 4096);
    cprintf(TAG "blk-ro: RO feature %s, write status %u, read status %u\n", b->ro ? "offered" : "absent", w, r);
    if (w == VBLK_S_IOERR && r == VBLK_S_OK && b->ro) {
        cprintf(TAG "blk-ro: write refused with IOERR, read ok\n");
        return 0;
    }
    return GUEST_EXIT_FAILED;
}

/* ------------------------------------------------------------ benchmarks */
static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Keeps `qd` reads of `bs` bytes in flight on queue 0 for `secs` seconds,
 * random or sequential; returns completed reads (0 after an error). */
static uint64_t blk_read_loop(struct blk *b, const char *name, uint64_t secs, uint64_t bs, uint64_t qd, bool random,
                              uint64_t *elapsed_us)
{
    uint64_t blocks = b->capacity * 512 / bs;
    if (!blocks) {
        cprintf(TAG "%s: the disk is smaller than one %lu-byte block\n", name, (unsigned long)bs);
        return 0;
    }
    uint8_t *bufs = guest_alloc(qd * bs);
    if (!bufs) {
        cprintf(TAG "%s: no memory for %lu buffers of %lu KiB\n", name, (unsigned long)qd, (unsigned long)(bs >> 10));
        return 0;
    }
    uint64_t seed = rdtsc() | 1, next_block = 0, completed = 0;
    uint64_t t0 = rdtsc(), end = t0 + us_to_tsc(secs * 1000000);
    bool stopping = false;
    for (unsigned slot = 0; slot < qd; slot++) {
        struct blk_req *r = &b->reqs[slot];
        r->type = VBLK_T_IN;
        r->bytes = (uint32_t)bs;
        r->data = (uintptr_t)(bufs + slot * bs);
        r->queue = 0;
    }
    for (;;) {
        if (!stopping)
            for (unsigned slot = 0; slot < qd; slot++) {
                struct blk_req *r = &b->reqs[slot];
                if (r->busy) continue;
                uint64_t blk = random ? xorshift(&seed) % blocks : next_block++ % blocks;
                r->sector = blk * (bs / 512);
                if (!blk_submit(b, slot)) break;
            }
        blk_kick_all(b);
        if (!b->inflight) break;
        /* Reap everything that completed, then refill in one go: batches of
         * new requests keep notifications (exits) rare. */
        int slot = blk_wait(b);
        for (; slot >= 0; slot = blk_reap(b)) {
            if (b->reqs[slot].status != VBLK_S_OK) {
                cprintf(TAG "%s: read of sector %lu failed with status %u\n", name,
                        (unsigned long)b->reqs[slot].sector, b->reqs[slot].status);
                return 0;
            }
            completed++;
        }
        if (!stopping && rdtsc() >= end) stopping = true;
    }
    *elapsed_us = tsc_to_us(rdtsc() - t0);
    return completed;
}

static int blk_bench(const char *arg, const char *name, bool random, uint64_t def_bs, uint64_t def_qd)
{
    uint64_t secs;
    if (!parse_u64(arg, &secs) || secs == 0 || secs > 3600) {
        cprintf(TAG "%s: bad argument '%s' (want seconds, 1-3600)\n", name, arg);
        return GUEST_EXIT_USAGE;
    }
    uint64_t bs = opt_u64("bs", def_bs), qd = opt_u64("qd", def_qd);
    if (bs < 512 || bs % 512 || bs > 4 * MIB) bs = def_bs;
    if (!qd || qd > MAX_SLOTS) qd = def_qd;
    struct blk *b = &the_blk;
    if (!blk_init(b, opt_u64("indirect", 1) != 0)) return GUEST_EXIT_FAILED;
    uint64_t us = 0, n = blk_read_loop(b, name, secs, bs, qd, random, &us);
    if (!n || !us) return GUEST_EXIT_FAILED;
    uint64_t iops = n * 1000000 / us, kib_s = n * (bs / 1024) * 1000000 / us;
    uint64_t nn = notifies(b);
    cprintf(TAG "%s: %lu reads of %lu KiB in %lu us, qd %lu: iops=%lu mibps=%lu.%03lu notifies=%lu notify_us=%lu\n",
            name, (unsigned long)n, (unsigned long)(bs >> 10), (unsigned long)us, (unsigned long)qd,
            (unsigned long)iops, (unsigned long)(kib_s / 1024), (unsigned long)(kib_s % 1024 * 1000 / 1024),
            (unsigned long)nn, (unsigned long)(nn ? tsc_to_us(b->vq[0].notify_cycles) / nn : 0));
    return 0;
}

int blk_randread_run(const char *arg) { return blk_bench(arg, "blk-randread", true, 4096, 32); }
int blk_seqread_run(const char *arg) { return blk_bench(arg, "blk-seqread", false, MIB, 4); }

/* ------------------------------------------------------------ blk-counter */
/* Counts boots on the disk, for vireo's restart tests: sector 0 holds
 * {magic, n}; boot n writes {magic, n} to sector n, then the new header,
 * then flushes -- and only then does THEN (crash, hang, ...). After k boots
 * the disk must hold exactly 1..k: a write the guest saw acknowledged and
 * flushed survives the crash and the restart. */
#define COUNTER_MAGIC 0x544e554f43455249ull /* "IRECOUNT" */
int blk_counter_run(const char *arg)
{
    struct blk *b = &the_blk;
    if (!blk_init(b, false)) return GUEST_EXIT_FAILED;
    uint64_t *sector = guest_alloc(PAGE_SIZE);
    if (!sector) return GUEST_EXIT_FAILED;
    if (blk_do(b, VBLK_T_IN, 0, (uintptr_t)sector, 512) != VBLK_S_OK) {
        cprintf(TAG "blk-counter: reading the header failed\n");
        return GUEST_EXIT_FAILED;
    }
    uint64_t n = sector[0] == COUNTER_MAGIC ? sector[1] + 1 : 1;
    if (n >= b->capacity) {
        cprintf(TAG "blk-counter: the disk is full (%lu boots)\n", (unsigned long)n);
        return GUEST_EXIT_FAILED;
    }
    memset(sector, 0, 512);
    sector[0] = COUNTER_MAGIC;
    sector[1] = n;
    uint8_t st = blk_do(b, VBLK_T_OUT, n, (uintptr_t)sector, 512);
    if (st == VBLK_S_OK) st = blk_do(b, VBLK_T_OUT, 0, (uintptr_t)sector, 512);
    if (st == VBLK_S_OK) st = blk_do(b, VBLK_T_FLUSH, 0, 0, 0);
    if (st != VBLK_S_OK) {
        cprintf(TAG "blk-counter: writing boot %lu failed with status %u\n", (unsigned long)n, st);
        return GUEST_EXIT_FAILED;
    }
    cprintf(TAG "blk-counter: boot %lu flushed\n", (unsigned long)n);
    return workload_finish(arg);
}

