/* The workloads: one function each, chosen by "workload=NAME[:ARG]".
 * vCPU 0 runs `run`; the others run `secondary` if given, else park.
 * `run` returns 0 to power off (ACPI S5) or a test-exit status. */
#include "arch.h"
#include "guest.h"
#include "virtio.h"

#define TAG "vireo testguest: "

/* ARG as a number in [0, max]; prints why not and returns false. */
static bool number_arg(const char *workload, const char *arg, uint64_t max, uint64_t *out)
{
    if (parse_u64(arg, out) && *out <= max) return true;
    cprintf(TAG "%s: bad argument '%s' (want a number up to %lu)\n", workload, arg, (unsigned long)max);
    return false;
}

/* ------------------------------------------------------------ hello */
static int hello_run(const char *arg)
{
    (void)arg;
    cprintf(TAG "hello from vCPU 0 of %u\n", boot_info()->vcpu_count);
    return 0;
}

/* ------------------------------------------------------------ smp */
#define SMP_WAIT_US 5000000u

static uint32_t smp_online_count;
static uint8_t smp_online[MAX_VCPUS];

static void smp_report(unsigned cpu)
{
    cprintf(TAG "vCPU %u online\n", cpu);
    atomic_store(&smp_online[cpu], 1);
    atomic_inc(&smp_online_count);
}

static void smp_secondary(unsigned cpu, const char *arg)
{
    (void)arg;
    smp_report(cpu);
}

static int smp_run(const char *arg)
{
    (void)arg;
    unsigned n = boot_info()->vcpu_count;
    smp_report(0);
    uint64_t deadline = rdtsc() + us_to_tsc(SMP_WAIT_US);
    while (atomic_load(&smp_online_count) < n && rdtsc() < deadline) idle_us(1000);
    unsigned online = atomic_load(&smp_online_count);
    if (online < n)
        for (unsigned i = 0; i < n; i++)
            if (!atomic_load(&smp_online[i])) cprintf(TAG "smp: vCPU %u did not come online\n", i);
    cprintf(TAG "smp: %u of %u vCPUs online\n", online, n);
    return online == n ? 0 : GUEST_EXIT_FAILED;
}

/* ------------------------------------------------------------ cpu:MS */
static int cpu_run(const char *arg)
{
    uint64_t ms;
    if (!number_arg("cpu", arg, 24ull * 3600 * 1000, &ms)) return GUEST_EXIT_USAGE;
    uint64_t start = rdtsc(), end = start + us_to_tsc(ms * 1000), iterations = 0, x = 88172645463325252ull;
    do {
        for (int i = 0; i < 1024; i++) { /* xorshift64: pure ALU work */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            __asm__ volatile("" : "+r"(x)); /* keep the loop */
        }
        iterations += 1024;
        heartbeat();
    } while (rdtsc() < end);
    uint64_t us = tsc_to_us(rdtsc() - start);
    cprintf(TAG "cpu: %lu iterations in %lu ms (%lu per ms, %s TSC)\n", (unsigned long)iterations,
            (unsigned long)(us / 1000), (unsigned long)(us ? iterations * 1000 / us : 0),
            tsc_khz_estimated() ? "estimated" : "given");
    return 0;
}

/* ------------------------------------------------------------ bursts:SECS */
/* Latency-sensitive (the controller's noisy-neighbour test): mostly idle through
 * the idle port (the vCPU thread sleeps, as a halted vCPU does), waking hz=
 * (200) times a second on a fixed schedule for a burst of burst_us= (300)
 * microseconds of ALU work. Prints how late each wake-up was as the guest
 * saw it (scheduled time to the first instruction after the idle), p50 and
 * p99, every report_s= (10) seconds and at the end. */
static uint64_t xorshift_block(uint64_t x)
{
    for (int i = 0; i < 1024; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

/* log2 buckets of microseconds: bucket i holds [2^(i-1), 2^i) us, 0 holds 0. */
#define LATE_BUCKETS 32
static uint64_t late_quantile_us(const uint64_t *h, uint64_t n, uint64_t permille)
{
    uint64_t want = n * permille / 1000, seen = 0;
    for (unsigned i = 0; i < LATE_BUCKETS; i++) {
        seen += h[i];
        if (seen > want) return i ? 1ull << i : 0; /* the bucket's upper edge */
    }
    return 0;
}

static int bursts_run(const char *arg)
{
    uint64_t secs;
    if (!number_arg("bursts", arg, 24ull * 3600, &secs)) return GUEST_EXIT_USAGE;
    uint64_t hz = opt_u64("hz", 200), burst_us = opt_u64("burst_us", 300), report_s = opt_u64("report_s", 10);
    if (hz == 0 || hz > 10000) hz = 200;
    uint64_t period = us_to_tsc(1000000 / hz), burst = us_to_tsc(burst_us);
    uint64_t start = rdtsc(), end = start + us_to_tsc(secs * 1000000), next = start + period, next_report = start;
    uint64_t hist[LATE_BUCKETS] = {0}, n = 0, x = 88172645463325252ull, late_sum_us = 0;
    cprintf(TAG "bursts: %lu Hz, %lu us bursts for %lu s\n", (unsigned long)hz, (unsigned long)burst_us, (unsigned long)secs);
    while (next < end) {
        uint64_t now = rdtsc();
        if (now < next) idle_us((uint32_t)tsc_to_us(next - now));
        now = rdtsc();
        if (now < next) continue; /* woke early: sleep the rest */
        uint64_t late = tsc_to_us(now - next);
        unsigned b = 0;
        while (b < LATE_BUCKETS - 1 && (1ull << b) <= late) b++;
        hist[b]++;
        n++;
        late_sum_us += late;
        while (rdtsc() - now < burst) x = xorshift_block(x);
        next += period;
        if (next < rdtsc()) next = rdtsc() + period; /* fell behind: do not burst back to back */
        if (report_s && rdtsc() >= next_report) {
            next_report += us_to_tsc(report_s * 1000000);
            if (n > 1)
                cprintf(TAG "bursts: t=%lu ms wakes %lu late p50 %lu us p99 %lu us\n",
                        (unsigned long)(tsc_to_us(rdtsc() - start) / 1000), (unsigned long)n,
                        (unsigned long)late_quantile_us(hist, n, 500), (unsigned long)late_quantile_us(hist, n, 990));
        }
    }
    cprintf(TAG "bursts: done: %lu wakes, late mean %lu us p50 %lu us p99 %lu us (%lx)\n", (unsigned long)n,
            (unsigned long)(n ? late_sum_us / n : 0), (unsigned long)late_quantile_us(hist, n, 500),
            (unsigned long)late_quantile_us(hist, n, 990), (unsigned long)(x & 0xf));
    return 0;
}

/* ------------------------------------------------------------ duty:SECS */
/* A duty-cycled burner (the controller's noisy-neighbour test): every period_ms=
 * (10) a job of fixed ALU work arrives -- load= (35) percent of one period
 * at the speed it measured at start (the best of 20 rounds of 1 ms, so a
 * preempted round does not count) -- at a random moment inside its period,
 * and the burner works through the jobs that have arrived, then idles until
 * the next one. The random arrival keeps two burners' jobs from staying in
 * step or out of step for a whole run (with fixed phases, whether they ever
 * overlap depended on when each happened to start). A job that cannot start
 * within its period waits (the backlog is worked off later), so throughput
 * -- iterations per second -- equals the demand as long as the host CPU
 * has room for it over time, and falls as soon as it has not; jobs more
 * than backlog= (100) periods late are dropped and counted as missed.
 * Prints the cumulative iterations every report_s= (5) seconds
 * ("duty: t=MS ms iterations N") and at the end. */
static int duty_run(const char *arg)
{
    uint64_t secs;
    if (!number_arg("duty", arg, 24ull * 3600, &secs)) return GUEST_EXIT_USAGE;
    uint64_t period_ms = opt_u64("period_ms", 10), load = opt_u64("load", 35), report_s = opt_u64("report_s", 5);
    uint64_t backlog = opt_u64("backlog", 100);
    if (period_ms == 0 || period_ms > 10000) period_ms = 10;
    if (load == 0 || load > 100) load = 35;
    if (backlog == 0) backlog = 1;
    uint64_t x = 88172645463325252ull, best = 0; /* blocks of 1024 per ms */
    for (int round = 0; round < 20; round++) {
        uint64_t t0 = rdtsc(), blocks = 0;
        while (rdtsc() - t0 < us_to_tsc(1000)) {
            x = xorshift_block(x);
            blocks++;
        }
        if (blocks > best) best = blocks;
        idle_us(1000);
    }
    uint64_t work = best * period_ms * load / 100; /* blocks per job */
    if (work == 0) work = 1;
    /* Arrival times: each guest its own sequence (two burners with the
     * same command line must not draw the same one). */
    uint64_t seed = rdtsc() | 1, period = us_to_tsc(period_ms * 1000), start = rdtsc();
    uint64_t end = start + us_to_tsc(secs * 1000000);
    uint64_t next_report = start + us_to_tsc(report_s * 1000000), iterations = 0, missed = 0;
    cprintf(TAG "duty: %lu%% of %lu ms periods: %lu iterations per job (%lu per ms measured)\n", (unsigned long)load,
            (unsigned long)period_ms, (unsigned long)(work * 1024), (unsigned long)(best * 1024));
    for (uint64_t k = 0;; k++) { /* job k arrives in period k */
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        uint64_t arrives = start + k * period + seed % period;
        if (arrives >= end) break;
        uint64_t now;
        while ((now = rdtsc()) < arrives) idle_us((uint32_t)tsc_to_us(arrives - now)); /* woke early: sleep the rest */
        if (now - arrives > backlog * period) { /* too late to be worth doing */
            missed++;
            continue;
        }
        for (uint64_t i = 0; i < work; i++) x = xorshift_block(x);
        iterations += work * 1024;
        now = rdtsc();
        if (report_s && now >= next_report) {
            next_report += us_to_tsc(report_s * 1000000);
            cprintf(TAG "duty: t=%lu ms iterations %lu missed %lu\n", (unsigned long)(tsc_to_us(now - start) / 1000),
                    (unsigned long)iterations, (unsigned long)missed);
        }
    }
    uint64_t us = tsc_to_us(rdtsc() - start);
    cprintf(TAG "duty: done: %lu iterations in %lu ms (%lu per ms), %lu jobs missed (%lx)\n", (unsigned long)iterations,
            (unsigned long)(us / 1000), (unsigned long)(us ? iterations * 1000 / us : 0), (unsigned long)missed,
            (unsigned long)(x & 0xf));
    return 0;
}

/* ------------------------------------------------------------ mem:MIB */
static uint64_t mem_pattern(uint64_t addr, uint64_t seed) { return (addr * 0x9e3779b97f4a7c15ull) ^ seed; }

static int mem_run(const char *arg)
{
    const struct vireo_boot_info *bi = boot_info();
    uint64_t mib;
    if (!number_arg("mem", arg, 1ull << 20, &mib)) return GUEST_EXIT_USAGE;
    uint64_t start = (bi->free_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), end = bi->free_end & ~(PAGE_SIZE - 1);
    if (bi->free_end > bi->mem_size || end <= start || mib > (end - start) / MIB) {
        cprintf(TAG "mem: %lu MiB requested, but the free area [0x%lx, 0x%lx) holds only %lu MiB\n",
                (unsigned long)mib, (unsigned long)bi->free_start, (unsigned long)bi->free_end,
                (unsigned long)(end > start ? (end - start) / MIB : 0));
        return GUEST_EXIT_FAILED;
    }
    uint64_t pages = mib * MIB / PAGE_SIZE, seed = rdtsc(), t0 = rdtsc();
    /* volatile: the compiler must really store and really load every word. */
    for (uint64_t p = 0; p < pages; p++) {
        volatile uint64_t *w = (volatile uint64_t *)(uintptr_t)(start + p * PAGE_SIZE);
        for (unsigned i = 0; i < PAGE_SIZE / 8; i++) w[i] = mem_pattern((uintptr_t)&w[i], seed);
        heartbeat();
    }
    for (uint64_t p = 0; p < pages; p++) {
        volatile uint64_t *w = (volatile uint64_t *)(uintptr_t)(start + p * PAGE_SIZE);
        for (unsigned i = 0; i < PAGE_SIZE / 8; i++) {
            uint64_t want = mem_pattern((uintptr_t)&w[i], seed), got = w[i];
            if (got != want) {
                cprintf(TAG "mem: mismatch at %p: wrote 0x%lx, read 0x%lx\n", (void *)&w[i], (unsigned long)want,
                        (unsigned long)got);
                return GUEST_EXIT_FAILED;
            }
        }
        heartbeat();
    }
    cprintf(TAG "mem: wrote and verified %lu MiB (%lu pages) at 0x%lx in %lu ms\n", (unsigned long)mib,
            (unsigned long)pages, (unsigned long)start, (unsigned long)(tsc_to_us(rdtsc() - t0) / 1000));
    return 0;
}

/* ------------------------------------------------------------ exit:N */
static int exit_run(const char *arg)
{
    uint64_t status;
    if (!number_arg("exit", arg, UINT32_MAX, &status)) return GUEST_EXIT_USAGE;
    cprintf(TAG "exit: test-exit with status %lu\n", (unsigned long)status);
    test_exit((uint32_t)status);
}

/* ------------------------------------------------------------ panic */
static int panic_run(const char *arg)
{
    (void)arg;
    panic("requested by workload=panic");
}

/* ------------------------------------------------------------ triple-fault */
static int triple_fault_run(const char *arg)
{
    (void)arg;
    cprintf(TAG "triple-fault: executing ud2\n");
    /* No exception can be delivered to this guest, so #UD ends the VM as a
     * triple fault (KVM_EXIT_SHUTDOWN). */
    __asm__ volatile("ud2");
    cprintf(TAG "triple-fault: still running after ud2\n");
    return GUEST_EXIT_FAILED;
}

/* ------------------------------------------------------------ hang */
/* Every vCPU spins without a single exit: only vireo can stop this VM. */
static void hang_secondary(unsigned cpu, const char *arg)
{
    (void)cpu, (void)arg;
    for (;;) cpu_relax();
}

static int hang_run(const char *arg)
{
    cprintf(TAG "hang: spinning on all vCPUs, no exits\n");
    hang_secondary(0, arg);
    return GUEST_EXIT_FAILED;
}

/* ------------------------------------------------------------ finishing */
int workload_finish(const char *action)
{
    if (!action || !*action || !strcmp(action, "poweroff")) return 0;
    if (!strcmp(action, "panic")) return panic_run(NULL);
    if (!strcmp(action, "triple-fault")) return triple_fault_run(NULL);
    if (!strcmp(action, "hang")) return hang_run(NULL);
    if (action[0] == 'e' && action[1] == 'x' && action[2] == 'i' && action[3] == 't' && action[4] == ':')
        return exit_run(action + 5);
    cprintf(TAG "unknown finishing action '%s' (poweroff, panic, triple-fault, hang, exit:N)\n", action);
    return GUEST_EXIT_USAGE;
}

/* ------------------------------------------------------------ watchdog:FEEDS */
/* The IB700 watchdog (ports 0x441/0x443): arm it with value 14 (2 s), feed
 * it FEEDS times 500 ms apart, then stop feeding and idle (through vireo's
 * idle port, so this is not a hang): vireo must stop the guest ~2 s later.
 * FEEDS 0: arm, then disarm and idle 4 s: vireo must not stop it. */
#define IB700_STOP 0x441
#define IB700_START 0x443
static int watchdog_run(const char *arg)
{
    uint64_t feeds;
    if (!number_arg("watchdog", arg, 1000000, &feeds)) return GUEST_EXIT_USAGE;
    outb(IB700_START, 14);
    for (uint64_t i = 0; i < feeds; i++) {
        idle_us(500000);
        outb(IB700_START, 14);
    }
    if (feeds == 0) { /* disarm: the guest must then run on undisturbed */
        outb(IB700_STOP, 0);
        cprintf(TAG "watchdog: disarmed\n");
        idle_us(4000000);
        return 0;
    }
    cprintf(TAG "watchdog: fed %lu times; not any more\n", (unsigned long)feeds);
    for (;;) idle_us(1000000);
}

/* ------------------------------------------------------------ pio-loop:N */
static int pio_loop_run(const char *arg)
{
    uint64_t n;
    if (!number_arg("pio-loop", arg, UINT64_MAX, &n)) return GUEST_EXIT_USAGE;
    uint64_t t0 = rdtsc();
    for (uint64_t i = 0; i < n; i++) outl(VIREO_PORT_NULL, (uint32_t)i);
    uint64_t cycles = rdtsc() - t0;
    cprintf(TAG "pio-loop: %lu exits in %lu us, %lu cycles per exit (%lu ns)\n", (unsigned long)n,
            (unsigned long)tsc_to_us(cycles), (unsigned long)(n ? cycles / n : 0),
            (unsigned long)(n ? tsc_to_ns(cycles) / n : 0));
    return 0;
}

/* ------------------------------------------------------------ the table */
static const struct workload workloads[] = {
    {"hello", "hello", hello_run, NULL, false},
    {"smp", "smp", smp_run, smp_secondary, false},
    {"cpu", "cpu:MS (busy loop for MS ms)", cpu_run, NULL, true},
    {"mem", "mem:MIB (write and verify MIB MiB of free RAM)", mem_run, NULL, true},
    {"exit", "exit:N (test-exit with status N)", exit_run, NULL, true},
    {"panic", "panic (pvpanic)", panic_run, NULL, false},
    {"triple-fault", "triple-fault (ud2)", triple_fault_run, NULL, false},
    {"hang", "hang (spin forever, no exits)", hang_run, hang_secondary, false},
    {"pio-loop", "pio-loop:N (N writes to the null port)", pio_loop_run, NULL, true},
    {"watchdog", "watchdog:FEEDS (arm the IB700 at 2 s, feed it FEEDS times, stop feeding; 0: disarm and idle 4 s)",
     watchdog_run, NULL, true},
    {"blk-counter", "blk-counter:THEN (virtio-blk: count this boot in a block, flush, then THEN: poweroff, panic, "
                    "triple-fault, hang, exit:N)", blk_counter_run, NULL, false},
    {"blk-rw", "blk-rw (virtio-blk: write a pattern, flush, read back; sectors= start= seed= chunk= qd=)", blk_rw_run,
     NULL, false},
    {"blk-ro", "blk-ro (virtio-blk: expect RO and IOERR on write)", blk_ro_run, NULL, false},
    {"blk-randread", "blk-randread:SECONDS (4 KiB random reads; qd= bs=)", blk_randread_run, NULL, true},
    {"blk-seqread", "blk-seqread:SECONDS (1 MiB sequential reads; qd= bs=)", blk_seqread_run, NULL, true},
    {"balloon", "balloon (virtio-balloon: follow the target, answer stats; secs= touch=MIB poll_us= "
                "phases=MIB:SECS,... rate=MIB/s)", balloon_run, NULL, false},
    {"bursts", "bursts:SECS (latency-sensitive: idle, woken hz= times a second for burst_us=)", bursts_run, NULL, true},
    {"duty", "duty:SECS (duty-cycled burner: a job of load= % of period_ms= arrives at a random moment of each period)", duty_run, NULL, true},
};

const struct workload *workload_find(const char *name)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(workloads[i].name, name)) return &workloads[i];
    return NULL;
}

void workloads_list(void)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        cprintf(TAG "  workload=%s\n", workloads[i].usage);
}
