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
    } while (rdtsc() < end);
    uint64_t us = tsc_to_us(rdtsc() - start);
    cprintf(TAG "cpu: %lu iterations in %lu ms (%lu per ms, %s TSC)\n", (unsigned long)iterations,
            (unsigned long)(us / 1000), (unsigned long)(us ? iterations * 1000 / us : 0),
            tsc_khz_estimated() ? "estimated" : "given");
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
    {"blk-rw", "blk-rw (virtio-blk: write a pattern, flush, read back; sectors= start= seed= chunk= qd=)", blk_rw_run,
     NULL, false},
    {"blk-ro", "blk-ro (virtio-blk: expect RO and IOERR on write)", blk_ro_run, NULL, false},
    {"blk-randread", "blk-randread:SECONDS (4 KiB random reads; qd= bs=)", blk_randread_run, NULL, true},
    {"blk-seqread", "blk-seqread:SECONDS (1 MiB sequential reads; qd= bs=)", blk_seqread_run, NULL, true},
    {"balloon", "balloon (virtio-balloon: follow the target, answer stats; secs= touch=MIB poll_us=)", balloon_run,
     NULL, false},
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
