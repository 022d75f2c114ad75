/* virtio-balloon from ring 3, polled: the `balloon` workload.
 *
 * It cooperates with the host like Linux's driver does, minus the memory
 * management: its "free memory" is a pool of pages at the top of the free
 * area. Every poll_us= (1000) microseconds it reads the target (config
 * num_pages; one MMIO exit); to inflate it hands the pool's pages, from the
 * top down, to the inflate queue as 4 KiB page numbers, to deflate it takes
 * the most recent ones back on the deflate queue and writes to them again
 * (as a guest reusing its memory would); then it writes `actual`. With the
 * stats queue it answers every stats request with plausible numbers.
 * Options: secs= (run this long then power off; default: until vireo stops
 * the VM), touch= MiB of the pool to write first (so the host has something
 * to reclaim), poll_us=.
 *
 * Memory use with phases (the live controller tests): phases=MIB:SECS,MIB:SECS,...
 * makes the workload itself use memory from the pool, from the bottom up
 * (the balloon takes it from the top down): each phase moves its use to MIB
 * -- at rate= MiB/s (default: at once) when growing -- and holds it until
 * SECS seconds after the phase began; the last phase holds until the end.
 * The use grows 16 MiB at a time (a step costs milliseconds natively, but
 * each page a nested page fault under emulation, ~1 ms in the QEMU
 * harness). The first phase's use is in place before the first stats go
 * out, and the phases' SECS count from then, so a slow start-up neither
 * looks like growth to a controller nor eats into the first phase; later
 * growth is answered between steps. Stats are honest: free = available =
 * pool - balloon - use.
 *
 * A failed allocation is one 4 KiB page the workload needed while the
 * balloon held it (no free page was left in the pool). The workload then
 * takes it back itself, as Linux's deflate-on-OOM does (VIRTIO_BALLOON_F_
 * DEFLATE_ON_OOM negotiated: the page goes on the deflate queue, `actual`
 * drops below the target and vireo counts a deflate-on-OOM), or, without
 * that feature, waits until the host lowers the target. Each page is
 * counted once; the count is printed at every phase change and at the end
 * ("failed allocations N"). The driver never gives the host a page in use:
 * it inflates at most to what is free. */
#include "arch.h"
#include "guest.h"
#include "virtio.h"

#define TAG "vireo testguest: balloon: "

#define VB_F_STATS_VQ 1
#define VB_F_DEFLATE_ON_OOM 2
#define PFNS_PER_BUF 1024 /* one 4 KiB page of le32 page numbers */
#define BUFS 32           /* up to 128 MiB per round trip */

struct stat_entry {
    uint16_t tag;
    uint64_t val;
} __attribute__((packed));

static struct virtio_dev dev;
static struct virtq inflate_q, deflate_q, stats_q;
static bool have_stats;
static uint32_t *pfn_bufs;         /* BUFS pages of page numbers */
static struct stat_entry *stats;   /* the stats buffer (10 entries) */
static uint64_t pool_start, pool_pages;
static uint64_t stats_sent, loops;
static uint64_t used_pages;        /* the workload's own use, at the bottom of the pool */
static uint64_t failed_pages;      /* failed allocations (see the top of the file) */
static uint64_t failed_upto;       /* use level up to which failures were counted */
static uint64_t oom_deflated;      /* pages taken back through deflate-on-OOM */

/* Page i of the pool counting from the top: the order pages go into the balloon. */
static uint64_t pool_page(uint64_t i) { return pool_start + (pool_pages - 1 - i) * PAGE_SIZE; }

static void fill_stats(uint32_t actual)
{
    uint64_t held = actual + used_pages;
    uint64_t free_bytes = (pool_pages > held ? pool_pages - held : 0) * PAGE_SIZE;
    const struct stat_entry s[] = {
        {0, 0},                          /* swap in */
        {1, 0},                          /* swap out */
        {2, 0},                          /* major faults */
        {3, loops},                      /* minor faults: something that moves */
        {4, free_bytes},                 /* free */
        {5, boot_info()->mem_size},      /* total */
        {6, free_bytes},                 /* available */
        {7, 0},                          /* disk caches */
    };
    memcpy(stats, s, sizeof s);
}

static void post_stats(uint32_t actual)
{
    fill_stats(actual);
    struct vbuf buf = {(uintptr_t)stats, 8 * sizeof(struct stat_entry)};
    if (virtq_add(&stats_q, &buf, 1, 0) < 0) panic("balloon: stats queue full");
    virtq_kick(&stats_q);
    stats_sent++;
}

/* Sends pages [first, first+count) (pool order) on `q`, waits for all. */
static void send_pages(struct virtq *q, uint64_t first, uint64_t count)
{
    uint64_t done = 0;
    while (done < count) {
        unsigned nbufs = 0;
        while (done < count && nbufs < BUFS) {
            uint32_t *pfns = pfn_bufs + nbufs * PFNS_PER_BUF;
            uint64_t n = count - done < PFNS_PER_BUF ? count - done : PFNS_PER_BUF;
            for (uint64_t i = 0; i < n; i++) pfns[i] = (uint32_t)(pool_page(first + done + i) >> 12);
            struct vbuf buf = {(uintptr_t)pfns, (uint32_t)(n * 4)};
            if (virtq_add(q, &buf, 1, 0) < 0) panic("balloon: queue %u full", q->index);
            done += n;
            nbufs++;
        }
        virtq_kick(q);
        uint64_t deadline = rdtsc() + us_to_tsc(10000000);
        while (nbufs) {
            uint32_t head, len;
            if (virtq_get(q, &head, &len)) {
                nbufs--;
                continue;
            }
            if (rdtsc() > deadline) {
                cprintf(TAG "no answer on queue %u in 10 s\n", q->index);
                test_exit(GUEST_EXIT_FAILED);
            }
            cpu_relax();
        }
    }
}

static void touch(uint64_t first, uint64_t count, uint8_t v)
{
    for (uint64_t i = 0; i < count; i++) {
        volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)pool_page(first + i);
        *p = v; /* one write makes the page resident on the host */
    }
}

#define MAX_PHASES 16
#define USE_CHUNK_PAGES 4096 /* 16 MiB */
struct phase {
    uint64_t pages;
    uint64_t secs;
};

/* "MIB:SECS,MIB:SECS"; false on junk. */
static bool parse_phases(const char *text, struct phase *out, unsigned *n)
{
    *n = 0;
    while (*text) {
        char num[24];
        unsigned len = 0;
        uint64_t mib, secs;
        while (*text && *text != ':' && len < sizeof num - 1) num[len++] = *text++;
        num[len] = 0;
        if (*text++ != ':' || !parse_u64(num, &mib)) return false;
        len = 0;
        while (*text && *text != ',' && len < sizeof num - 1) num[len++] = *text++;
        num[len] = 0;
        if (!parse_u64(num, &secs) || *n >= MAX_PHASES) return false;
        if (*text == ',') text++;
        out[*n].pages = mib * (MIB / PAGE_SIZE);
        out[*n].secs = secs;
        (*n)++;
    }
    return *n > 0;
}

/* Pool index (from the top) of the next page the workload's use takes. */
static uint64_t use_page(uint64_t i) { return pool_pages - 1 - i; }

/* Moves the workload's use toward `want` pages; returns the pages still
 * missing (allocations waiting for the host, without deflate-on-OOM). */
static uint64_t use_memory(uint64_t want, uint32_t *actual, bool deflate_on_oom)
{
    if (want > pool_pages) want = pool_pages;
    if (want <= used_pages) {
        used_pages = want; /* freed: the pages are free again */
        return 0;
    }
    uint64_t room = pool_pages - *actual; /* what the use may grow to without the balloon's pages */
    if (want > room) {
        uint64_t from = failed_upto > room ? failed_upto : room;
        if (want > from) failed_pages += want - from;
        if (want > failed_upto) failed_upto = want;
        if (deflate_on_oom) {
            uint64_t take = want - room; /* the balloon's most recent pages */
            if (take > *actual) take = *actual;
            send_pages(&deflate_q, *actual - take, take);
            *actual -= (uint32_t)take;
            oom_deflated += take;
            vmmio_write(&dev, VMMIO_CONFIG + 4, *actual);
            room = pool_pages - *actual;
        }
    }
    uint64_t to = want < room ? want : room;
    /* A chunk at a time: the caller's loop answers the stats queue between
     * chunks, as a guest kernel answers while its programs allocate. */
    if (to > used_pages + USE_CHUNK_PAGES) to = used_pages + USE_CHUNK_PAGES;
    for (uint64_t i = used_pages; i < to; i++) {
        volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(pool_start + use_page(i) * PAGE_SIZE);
        *p = i; /* the page is in use: resident on the host */
    }
    if (to > used_pages) used_pages = to;
    return want - used_pages;
}

int balloon_run(const char *arg)
{
    (void)arg;
    if (!virtio_find(5, 0, &dev)) {
        cprintf(TAG "no virtio-balloon device (start vireo with --balloon)\n");
        return GUEST_EXIT_FAILED;
    }
    uint64_t wanted = VBIT(VF_VERSION_1) | VBIT(VF_EVENT_IDX) | VBIT(VB_F_STATS_VQ) | VBIT(VB_F_DEFLATE_ON_OOM);
    if (!virtio_negotiate(&dev, wanted, VBIT(VF_VERSION_1), "balloon")) return GUEST_EXIT_FAILED;
    have_stats = dev.features & VBIT(VB_F_STATS_VQ);
    if (!virtq_init(&dev, &inflate_q, 0, 64, 0) || !virtq_init(&dev, &deflate_q, 1, 64, 0)) return GUEST_EXIT_FAILED;
    if (have_stats && !virtq_init(&dev, &stats_q, 2, 4, 0)) return GUEST_EXIT_FAILED;
    pfn_bufs = guest_alloc(BUFS * PAGE_SIZE);
    stats = guest_alloc(PAGE_SIZE);
    if (!pfn_bufs || !stats) return GUEST_EXIT_FAILED;
    virtio_driver_ok(&dev);

    const struct vireo_boot_info *bi = boot_info();
    pool_start = guest_alloc_cursor();
    pool_pages = bi->free_end > pool_start ? (bi->free_end - pool_start) / PAGE_SIZE : 0;
    uint64_t secs = opt_u64("secs", 0), poll_us = opt_u64("poll_us", 1000);
    uint64_t touch_pages = opt_u64("touch", 0) * (MIB / PAGE_SIZE);
    if (touch_pages > pool_pages) touch_pages = pool_pages;
    if (poll_us > 1000000) poll_us = 1000000;
    cprintf(TAG "%lu MiB pool at 0x%lx, stats queue %s, deflate-on-oom %s\n", (unsigned long)(pool_pages * PAGE_SIZE / MIB),
            (unsigned long)pool_start, have_stats ? "on" : "off",
            (dev.features & VBIT(VB_F_DEFLATE_ON_OOM)) ? "on" : "off");
    if (touch_pages) {
        uint64_t t0 = rdtsc();
        touch(0, touch_pages, 1);
        cprintf(TAG "touched %lu MiB in %lu ms\n", (unsigned long)(touch_pages * PAGE_SIZE / MIB),
                (unsigned long)(tsc_to_us(rdtsc() - t0) / 1000));
    }

    struct phase phases[MAX_PHASES];
    unsigned nphases = 0, phase = 0;
    char ptext[256];
    bool deflate_on_oom = dev.features & VBIT(VB_F_DEFLATE_ON_OOM);
    uint64_t rate_pages = opt_u64("rate", 0) * (MIB / PAGE_SIZE); /* per second; 0: at once */
    if (cmdline_get("phases", ptext, sizeof ptext) && !parse_phases(ptext, phases, &nphases)) {
        cprintf(TAG "bad phases= '%s' (want MIB:SECS,MIB:SECS,...)\n", ptext);
        return GUEST_EXIT_USAGE;
    }
    uint32_t actual = 0, last_target = 0;
    if (nphases)
        cprintf(TAG "phase 1/%u: to %lu MiB, hold until %lu s\n", nphases,
                (unsigned long)(phases[0].pages * PAGE_SIZE / MIB), (unsigned long)phases[0].secs);
    /* With phases, the first stats go out once the first phase's use is in
     * place (the guest is "up" with its working set, and a controller sees
     * no start-up growth); its SECS count from then. */
    bool stats_posted = false;
    if (have_stats && !nphases) post_stats(0), stats_posted = true;

    uint64_t start = rdtsc(), phase_start = start, last_use = start;
    uint64_t use_goal = nphases ? phases[0].pages : 0; /* where the use is right now meant to be */
    bool reported = nphases == 0;
    uint64_t end = secs ? rdtsc() + us_to_tsc(secs * 1000000) : 0, inflated = 0, deflated = 0;
    for (;;) {
        loops++;
        uint64_t now = rdtsc();
        if (nphases) {
            if (phase + 1 < nphases && now - start >= us_to_tsc(phases[phase].secs * 1000000)) {
                phase++;
                phase_start = now;
                reported = false;
                cprintf(TAG "phase %u/%u: to %lu MiB%s, failed allocations %lu\n", phase + 1, nphases,
                        (unsigned long)(phases[phase].pages * PAGE_SIZE / MIB), rate_pages ? " gradually" : "",
                        (unsigned long)failed_pages);
            }
            uint64_t want = phases[phase].pages;
            if (want > use_goal && rate_pages) { /* grow at rate= */
                uint64_t step = tsc_to_us(now - last_use) * rate_pages / 1000000;
                if (step) {
                    use_goal = use_goal + step < want ? use_goal + step : want;
                    last_use = now;
                }
            } else {
                use_goal = want;
                last_use = now;
            }
            uint64_t missing = use_memory(use_goal, &actual, deflate_on_oom);
            if (!reported && !missing && used_pages == want) {
                reported = true;
                cprintf(TAG "phase %u/%u: using %lu MiB after %lu ms, failed allocations %lu\n", phase + 1, nphases,
                        (unsigned long)(used_pages * PAGE_SIZE / MIB),
                        (unsigned long)(tsc_to_us(now - phase_start) / 1000), (unsigned long)failed_pages);
                if (!stats_posted) {
                    start = now; /* the phases' SECS count from here */
                    if (have_stats) post_stats(actual);
                    stats_posted = true;
                }
            }
        }
        uint32_t target = vmmio_read(&dev, VMMIO_CONFIG + 0);
        if (target != last_target) {
            cprintf(TAG "target %u pages (%u MiB), holding %u\n", target, target >> 8, actual);
            last_target = target;
        }
        uint64_t givable = pool_pages - used_pages; /* never a page in use */
        if (target > givable) target = (uint32_t)givable; /* all we can give */
        if (target != actual) {
            uint64_t t0 = rdtsc();
            if (target > actual) {
                send_pages(&inflate_q, actual, target - actual);
                inflated += target - actual;
            } else {
                send_pages(&deflate_q, target, actual - target);
                deflated += actual - target;
                touch(target, actual - target, 2); /* use the memory again */
            }
            actual = target;
            vmmio_write(&dev, VMMIO_CONFIG + 4, actual);
            cprintf(TAG "now holding %u pages (%u MiB) after %lu ms\n", actual, actual >> 8,
                    (unsigned long)(tsc_to_us(rdtsc() - t0) / 1000));
        }
        if (have_stats && stats_posted) {
            uint32_t head, len;
            if (virtq_get(&stats_q, &head, &len)) post_stats(actual); /* the device asked for fresh numbers */
        }
        if (end && rdtsc() >= end) break;
        if (nphases && used_pages < use_goal && used_pages < pool_pages - actual) continue; /* still allocating */
        idle_us((uint32_t)poll_us);
    }
    cprintf(TAG "done: holding %u pages, inflated %lu, deflated %lu, %lu stats sent\n", actual,
            (unsigned long)inflated, (unsigned long)deflated, (unsigned long)stats_sent);
    if (nphases)
        cprintf(TAG "done: using %lu MiB, failed allocations %lu (pages the balloon held when needed), "
                    "%lu pages taken back by deflate-on-OOM\n",
                (unsigned long)(used_pages * PAGE_SIZE / MIB), (unsigned long)failed_pages, (unsigned long)oom_deflated);
    return 0;
}
