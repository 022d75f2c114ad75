/* The vireo test guest: shared declarations of its small modules.
 *
 *   main.c       entry from entry.S, boot-info checks, workload dispatch
 *   console.c    COM1 output (one lock, whole lines) and a tiny printf
 *   time.c       TSC time (boot_info.tsc_khz or a calibrated estimate)
 *   machine.c    the ways to stop or idle: ACPI S5, test-exit, pvpanic
 *   cmdline.c    "workload=NAME[:ARG] key=value ..." parsing
 *   util.c       mem*, string and number helpers (gcc may emit mem* calls)
 *   workloads.c  the workloads table and one function per workload
 *
 * Device drivers (virtio-mmio, polled from ring 3) belong in their own files
 * next to these, found through boot_info()->mmio_base / mmio_count. */
#ifndef TESTGUEST_GUEST_H
#define TESTGUEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/testguest_abi.h"
#include "vireo/layout.h"

#define MAX_VCPUS 256       /* the guest's own bookkeeping limit */
#define PAGE_SIZE 4096ull
#define MIB (1024ull * 1024ull)

/* Exit statuses the guest reports through VIREO_PORT_TEST_EXIT. */
#define GUEST_EXIT_FAILED 1     /* a workload found something wrong */
#define GUEST_EXIT_USAGE 2      /* unknown workload or bad argument */

/* main.c */
const struct vireo_boot_info *boot_info(void);

/* console.c — every call prints whole lines under one lock. */
void console_write(const char *s, size_t len);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* time.c */
void time_init(void);                 /* vCPU 0, before any other time call */
uint64_t tsc_khz(void);               /* never 0 after time_init */
bool tsc_khz_estimated(void);         /* true if boot_info gave 0 */
uint64_t tsc_to_us(uint64_t cycles);
uint64_t tsc_to_ns(uint64_t cycles);
uint64_t us_to_tsc(uint64_t us);
uint64_t time_us(void);               /* microseconds since time_init */

/* machine.c — none of the stop functions return. */
void idle_us(uint32_t us);
/* Call often from busy loops that make no exits (cpu:, mem:): at most one
 * null-port write per 100 ms, so vireo's hang detector sees progress. */
void heartbeat(void);
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void test_exit(uint32_t status);
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void park(void);

/* cmdline.c */
/* Copies the value of "key=value" from the command line into buf (NUL
 * terminated); false if the key is absent or the value does not fit. */
bool cmdline_get(const char *key, char *buf, size_t size);
/* The number given as "key=N", or `def` if absent or not a number. */
uint64_t opt_u64(const char *key, uint64_t def);

/* util.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
char *strchr(const char *s, int c);
/* Decimal or 0x-hex, the whole string; false on junk or overflow. */
bool parse_u64(const char *s, uint64_t *out);

/* workloads.c */
/* After a workload's own work: "poweroff" (or empty), "panic",
 * "triple-fault", "hang", "exit:N". Returns like a workload's run. */
int workload_finish(const char *action);

struct workload {
    const char *name;
    const char *usage;
    /* vCPU 0: returns 0 to power off, anything else is a test-exit status;
     * may also stop the VM itself and never return. */
    int (*run)(const char *arg);
    /* vCPUs 1..N-1; NULL means they park (idle until the VM stops). */
    void (*secondary)(unsigned cpu, const char *arg);
    bool needs_arg;
};
const struct workload *workload_find(const char *name);
void workloads_list(void);

#endif
