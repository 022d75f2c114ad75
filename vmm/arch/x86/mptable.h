// The Intel MultiProcessor Specification 1.4 tables: how a kernel booted
// with acpi=off (or without ACPI support) finds its CPUs and the I/O APIC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>

namespace vireo {

// Bytes write_mptable needs for `ncpus` processors.
size_t mptable_size(unsigned ncpus);

// Writes the MP floating pointer structure at the start of `dst` (which the
// guest sees at `guest_addr`, 16-byte aligned, below 4 GiB; the kernel scans
// the last KiB of base memory, where VIREO_MPTABLE_ADDR is) followed by the
// configuration table: one processor entry per vCPU (APIC id = index, the
// BSP is 0), an ISA bus, the I/O APIC (id = ncpus, at VIREO_IOAPIC_ADDR),
// I/O interrupt entries for ISA IRQs 0-15 (IRQ0 on pin 2 as on real boards,
// the rest on their own pins; IRQ2 is the cascade and has none) and the
// local interrupts LINT0 = ExtINT, LINT1 = NMI. Returns the bytes written;
// fails, writing nothing, if they do not fit in `dst`.
std::expected<size_t, std::string> write_mptable(std::span<uint8_t> dst, uint64_t guest_addr, unsigned ncpus);

}  // namespace vireo
