/* The vireo test-guest boot protocol ("ring-3 protocol").
 *
 * Why it exists: on hosts whose KVM is the nested PVM flavour, guest ring-0
 * code is emulated ~2000x slower and no interrupt or exception can be
 * delivered to a guest that is not PVM-aware. So the test guest has no
 * ring-0 code at all: vireo builds its page tables and starts every vCPU
 * directly in 64-bit ring 3. The same protocol works on real KVM.
 *
 * An ELF64 executable asks for this protocol with a note:
 *   namesz=6 name="vireo\0", type=VIREO_NOTE_RING3, desc=struct vireo_ring3_note.
 *
 * vireo then:
 *  - loads the PT_LOAD segments at their physical addresses (p_paddr);
 *  - identity-maps guest RAM below the MMIO hole (rounded up to 2 MiB) and
 *    the MMIO hole [VIREO_MMIO_HOLE, 4 GiB) with user-accessible, writable
 *    2 MiB pages; nothing else is mapped, so a touch between RAM's end and
 *    the hole faults (and so triple-faults);
 *  - writes a struct vireo_boot_info and the command line into guest RAM;
 *  - starts vCPU i at e_entry in ring 3 (CS/SS user selectors, CPL3),
 *    RFLAGS = IOPL3 | bit 1 (IF=0), with
 *       rdi = i (the vCPU index), rsi = guest address of vireo_boot_info,
 *       rsp = top of vCPU i's stack (stack_size bytes, 16-byte aligned),
 *    all vCPUs runnable at once (KVM_SET_MP_STATE RUNNABLE).
 *  The guest must never fault: any exception ends as a triple fault.
 *
 * Ports the guest uses (all 32-bit `out` unless said):
 *  VIREO_PORT_IDLE      out32 N: sleep this vCPU's thread N microseconds
 *                       (like a timed halt); returns early if vireo stops.
 *  VIREO_PORT_TEST_EXIT out32 N: stop the VM; vireo exits with status N&0xff.
 *  VIREO_PORT_NULL      any write: counted and ignored (exit benchmark).
 *  COM1 (0x3f8)         the console, a 16550A (poll LSR bit 5 before THR).
 *  0x505 pvpanic        out8 1: panic.
 *  ACPI PM1a control    out16 (SLP_TYP=5<<10 | SLP_EN=1<<13): power off.
 */
#ifndef VIREO_TESTGUEST_ABI_H
#define VIREO_TESTGUEST_ABI_H

#include <stdint.h>

#define VIREO_NOTE_NAME "vireo"
#define VIREO_NOTE_RING3 0x52494e47u /* 'RING' */

#define VIREO_PORT_IDLE 0x0510
#define VIREO_PORT_TEST_EXIT 0x0514
#define VIREO_PORT_NULL 0x0518

#define VIREO_BOOT_INFO_MAGIC 0x6f657269765f6269ull /* "ib_vireo" */

struct vireo_ring3_note {
    uint32_t version;    /* 1 */
    uint32_t stack_size; /* bytes per vCPU, 0 = 64 KiB */
};

struct vireo_boot_info {
    uint64_t magic;        /* VIREO_BOOT_INFO_MAGIC */
    uint32_t version;      /* 1 */
    uint32_t vcpu_count;
    uint64_t mem_size;     /* bytes of guest RAM, identity-mapped from 0 */
    uint64_t tsc_khz;      /* TSC frequency; 0 if unknown */
    uint64_t cmdline_addr; /* NUL-terminated guest command line */
    uint32_t cmdline_len;  /* without the NUL */
    uint32_t reserved0;
    uint64_t free_start;   /* first byte of RAM the guest may use freely */
    uint64_t free_end;     /* one past the last such byte (below stacks) */
    uint64_t mmio_base;    /* first virtio-mmio device window, 0 if none */
    uint32_t mmio_count;   /* number of 4 KiB virtio-mmio windows */
    uint32_t reserved1;
};

#endif
