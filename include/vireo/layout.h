/* Guest-physical memory map of a vireo x86 machine (shared with tests). */
#ifndef VIREO_LAYOUT_H
#define VIREO_LAYOUT_H

/* Low memory, all below 640 KiB */
#define VIREO_GDT_ADDR 0x0500ull        /* 16 descriptors */
#define VIREO_IDT_ADDR 0x0580ull        /* empty: limit 0 */
#define VIREO_TSS_ADDR 0x3000ull        /* 64-bit TSS + full I/O bitmap, to 0x506a */
#define VIREO_TSS_SIZE (0x68ull + 0x2000ull + 1ull)
#define VIREO_BOOT_STACK 0x8ff0ull      /* initial rsp of a Linux kernel */
#define VIREO_BOOT_INFO_ADDR 0x1000ull  /* vireo_boot_info (ring-3 guests) */
#define VIREO_ZERO_PAGE_ADDR 0x7000ull  /* Linux boot_params */
#define VIREO_PVH_INFO_ADDR 0x6000ull   /* hvm_start_info + memmap (PVH) */
#define VIREO_PML4_ADDR 0x9000ull       /* page tables: PML4, PDPT, then PDs */
#define VIREO_PDPT_ADDR 0xa000ull
#define VIREO_PD_ADDR 0xb000ull         /* up to 64 PDs (64 GiB) to 0x4b000 */
#define VIREO_PD_MAX 64
#define VIREO_CMDLINE_ADDR 0x50000ull
#define VIREO_CMDLINE_MAX 0x10000ull    /* 64 KiB, more than COMMAND_LINE_SIZE */
#define VIREO_MPTABLE_ADDR 0x9fc00ull   /* last KiB of base memory (EBDA) */
#define VIREO_EBDA_START 0x9fc00ull
#define VIREO_ACPI_ADDR 0xe0000ull      /* RSDP is searched in 0xe0000-0xfffff */
#define VIREO_ACPI_SIZE 0x20000ull
#define VIREO_HIGH_MEM 0x100000ull      /* 1 MiB: where RAM resumes */
#define VIREO_KERNEL_ADDR 0x1000000ull  /* 16 MiB: default bzImage load address */

/* MMIO hole below 4 GiB */
#define VIREO_MMIO_HOLE 0xc0000000ull     /* RAM above this moves above 4 GiB */
#define VIREO_BOOT_MARKER_ADDR 0xc0000000ull /* Firecracker-style boot-complete byte (123) */
#define VIREO_VIRTIO_MMIO_BASE 0xd0000000ull /* 4 KiB windows, one per device */
#define VIREO_VIRTIO_MMIO_SIZE 0x1000ull
/* GSI of the first virtio device: I/O APIC pins 16-23 are free of ISA
 * devices, so up to 8 virtio-mmio devices never share a line. */
#define VIREO_VIRTIO_IRQ_BASE 16
#define VIREO_VIRTIO_MAX_DEVICES 8
#define VIREO_IOAPIC_ADDR 0xfec00000ull
#define VIREO_LAPIC_ADDR 0xfee00000ull
#define VIREO_HIGH_RAM 0x100000000ull     /* 4 GiB */

/* ACPI fixed hardware (our own PIO block) */
#define VIREO_ACPI_PM1A_EVT 0x600   /* 4 bytes: status, enable */
#define VIREO_ACPI_PM1A_CNT 0x604   /* 2 bytes: SLP_TYP | SLP_EN */
#define VIREO_ACPI_PM_TMR 0x608     /* 4 bytes: 3.579545 MHz counter */
#define VIREO_ACPI_SCI_IRQ 9
#define VIREO_ACPI_S5_TYPE 5         /* SLP_TYP value of \_S5 */

#define VIREO_SERIAL_COM1 0x3f8
#define VIREO_SERIAL_IRQ 4
#define VIREO_PVPANIC_PORT 0x505

#endif
