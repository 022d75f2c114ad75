/* Time from the TSC. vireo tells us its frequency in boot_info.tsc_khz; if it
 * does not (0), we estimate it by timing a sleep on the idle port, which can
 * only oversleep, so the estimate errs high (durations then run long, never
 * short). Written once by vCPU 0 before the workload; read-only after. */
#include "arch.h"
#include "guest.h"

#define CALIBRATE_US 10000
#define FALLBACK_KHZ 2000000ull /* if even the idle port does not sleep */

/* Never 0, even before time_init: a division by zero would end the VM. */
static uint64_t khz = FALLBACK_KHZ;
static bool estimated;
static uint64_t tsc0;

void time_init(void)
{
    char opt[16];
    khz = boot_info()->tsc_khz;
    /* "tsc=calibrate" ignores the given frequency, to test the fallback. */
    if (cmdline_get("tsc", opt, sizeof opt) && !strcmp(opt, "calibrate")) khz = 0;
    if (!khz) {
        estimated = true;
        uint64_t best = ~0ull;
        for (int i = 0; i < 3; i++) {
            uint64_t t = rdtsc();
            idle_us(CALIBRATE_US);
            uint64_t d = rdtsc() - t;
            if (d < best) best = d;
        }
        khz = best * 1000 / CALIBRATE_US;
        if (khz < 100000) { /* under 100 MHz: the idle port did not sleep */
            cprintf("vireo testguest: TSC frequency unknown, assuming %lu kHz\n", (unsigned long)FALLBACK_KHZ);
            khz = FALLBACK_KHZ;
        } else {
            cprintf("vireo testguest: TSC frequency not given, estimated %lu kHz\n", (unsigned long)khz);
        }
    }
    tsc0 = rdtsc();
}

uint64_t tsc_khz(void) { return khz; }
bool tsc_khz_estimated(void) { return estimated; }
/* Split so the products never overflow 64 bits (a 128-bit division would
 * need libgcc, which this guest does not link). */
static uint64_t scale(uint64_t v, uint64_t mul, uint64_t div) { return v / div * mul + v % div * mul / div; }
uint64_t tsc_to_us(uint64_t cycles) { return scale(cycles, 1000, khz); }
uint64_t tsc_to_ns(uint64_t cycles) { return scale(cycles, 1000000, khz); }
uint64_t us_to_tsc(uint64_t us) { return scale(us, khz, 1000); }
uint64_t time_us(void) { return tsc_to_us(rdtsc() - tsc0); }
