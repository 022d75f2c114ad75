/* Stopping and idling the machine through the ports vireo provides. Each stop
 * request makes vireo end the VM; this vCPU may still run for a moment until
 * vireo gets to it, so every stop function then idles instead of returning. */
#include "arch.h"
#include "guest.h"

/* How long a stop request may go unanswered before we call it a VMM bug. */
#define STOP_GRACE_US 3000000u
#define IDLE_SLICE_US 100000u

void idle_us(uint32_t us) { outl(VIREO_PORT_IDLE, us); }

/* A write to the null port every HEARTBEAT_US of busy work: what a real
 * guest's timer interrupt is to vireo's hang detector -- proof of life.
 * Costs one exit per 100 ms. */
#define HEARTBEAT_US 100000u
void heartbeat(void)
{
    static uint64_t next;
    uint64_t now = rdtsc();
    if (now < next) return;
    outl(VIREO_PORT_NULL, 0);
    next = now + us_to_tsc(HEARTBEAT_US);
}

/* Idle until vireo stops us; if it never does, say so on the console. */
static __attribute__((noreturn)) void wait_for_stop(const char *what)
{
    for (uint32_t waited = 0; waited < STOP_GRACE_US; waited += IDLE_SLICE_US) idle_us(IDLE_SLICE_US);
    cprintf("vireo testguest: %s did not stop the VM\n", what);
    park();
}

void park(void)
{
    for (;;) idle_us(IDLE_SLICE_US);
}

void power_off(void)
{
    outw(VIREO_ACPI_PM1A_CNT, (uint16_t)((VIREO_ACPI_S5_TYPE << 10) | (1u << 13)));
    wait_for_stop("ACPI power-off");
}

void test_exit(uint32_t status)
{
    outl(VIREO_PORT_TEST_EXIT, status);
    wait_for_stop("test-exit");
}

void panic(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cprintf("vireo testguest: panic: %s\n", msg);
    outb(VIREO_PVPANIC_PORT, 1);
    wait_for_stop("pvpanic");
}
