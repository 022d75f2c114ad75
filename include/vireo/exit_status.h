/* vireo's process exit statuses: what `vireo run` returns and why.
 * Shared (C-compatible) so tools and tests name the same numbers. */
#ifndef VIREO_EXIT_STATUS_H
#define VIREO_EXIT_STATUS_H

enum vireo_exit_status {
    /* The guest powered off or reset itself (ACPI S5, i8042 reset, KVM
     * system event), or an operator stopped it (SIGINT, SIGTERM, Ctrl-A x). */
    VIREO_EXIT_OK = 0,
    /* vireo itself failed at run time (a host resource went away). */
    VIREO_EXIT_HOST_ERROR = 1,
    /* Bad input: command line, kernel image, disk; nothing was started. */
    VIREO_EXIT_BAD_INPUT = 2,
    /* The guest reported a panic through pvpanic (port 0x505). */
    VIREO_EXIT_GUEST_PANIC = 3,
    /* The guest triple-faulted (KVM_EXIT_SHUTDOWN). */
    VIREO_EXIT_TRIPLE_FAULT = 4,
    /* KVM could not run the guest: KVM_EXIT_INTERNAL_ERROR, FAIL_ENTRY,
     * or an exit vireo does not know. */
    VIREO_EXIT_KVM_ERROR = 5,
    /* The guest hung: no progress for longer than its learned normal, or
     * it stopped feeding its watchdog (--watchdog). */
    VIREO_EXIT_GUEST_HUNG = 6,
};
/* The test-exit device (port VIREO_PORT_TEST_EXIT) ends vireo with the
 * status the guest wrote (0..255), like QEMU's isa-debug-exit. */

#endif
