/* The vireo test guest: entry, boot checks and workload dispatch.
 *
 * Every vCPU enters guest_main (from entry.S) at once. vCPU 0 checks the boot
 * info, sets up time and runs the workload named by "workload=NAME[:ARG]" on
 * the command line (default: hello); the other vCPUs wait for it, run the
 * workload's secondary part if it has one, then park. */
#include "arch.h"
#include "guest.h"

/* The note that asks vireo for the ring-3 boot protocol. It must be in a
 * PT_NOTE program header: testguest.ld puts .note.vireo there. */
struct vireo_elf_note {
    uint32_t namesz, descsz, type;
    char name[8]; /* "vireo\0" padded to 4 bytes */
    struct vireo_ring3_note desc;
};
__attribute__((section(".note.vireo"), aligned(4), used)) static const struct vireo_elf_note vireo_note = {
    .namesz = sizeof VIREO_NOTE_NAME,
    .descsz = sizeof(struct vireo_ring3_note),
    .type = VIREO_NOTE_RING3,
    .name = VIREO_NOTE_NAME,
    .desc = {.version = 1, .stack_size = 64 * 1024},
};

static const struct vireo_boot_info *the_boot_info;
static volatile uint32_t boot_done; /* vCPU 0 finished the checks and time_init */

const struct vireo_boot_info *boot_info(void) { return the_boot_info; }

__attribute__((noreturn)) void guest_main(uint64_t cpu, const struct vireo_boot_info *bi);

void guest_main(uint64_t cpu, const struct vireo_boot_info *bi)
{
    /* Every vCPU stores the same pointer, so none depends on another here. */
    the_boot_info = bi;

    if (cpu != 0) {
        while (!atomic_load(&boot_done)) idle_us(100);
    } else {
        if (bi->magic != VIREO_BOOT_INFO_MAGIC || bi->version != 1)
            panic("bad boot info at %p: magic %lx version %u", (const void *)bi, (unsigned long)bi->magic,
                  bi->version);
        if (!bi->vcpu_count || bi->vcpu_count > MAX_VCPUS)
            panic("boot info says %u vCPUs (this guest handles 1..%u)", bi->vcpu_count, MAX_VCPUS);
        time_init();
        atomic_store(&boot_done, 1);
    }
    if (cpu >= bi->vcpu_count) park(); /* should not happen; keep out of the way */

    char spec[128];
    if (!cmdline_get("workload", spec, sizeof spec)) memcpy(spec, "hello", sizeof "hello");
    char *arg = strchr(spec, ':');
    if (arg) *arg++ = '\0';
    const struct workload *w = workload_find(spec);

    if (cpu != 0) {
        if (w && w->secondary && (arg || !w->needs_arg)) w->secondary((unsigned)cpu, arg);
        park();
    }

    if (!w) {
        cprintf("vireo testguest: unknown workload '%s'\n", spec);
        workloads_list();
        test_exit(GUEST_EXIT_USAGE);
    }
    if (w->needs_arg && !arg) {
        cprintf("vireo testguest: workload %s needs an argument: %s\n", w->name, w->usage);
        test_exit(GUEST_EXIT_USAGE);
    }
    int status = w->run(arg);
    if (status) test_exit((uint32_t)status);
    power_off();
}
