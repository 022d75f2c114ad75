/* Telemetry records: what vireo knows about where each guest's time goes.
 *
 * Written by the VMM (eBPF probes in bpf/, KVM's binary stats fd, the vCPU
 * threads' own counters); read by the control socket and the learned
 * controller. Plain C so any reader (C, C++, a Python ctypes client) can use
 * the records as they are; fixed sizes so a snapshot is a flat copy.
 *
 * Histograms are log2 of nanoseconds with VIREO_HIST_BUCKETS buckets, the
 * convention of KVM's own LOG_HIST stats (KVM_STATS_LOG_HIST_UPDATE), so a
 * BPF histogram and KVM's halt_wait_hist read the same way:
 *   bucket 0        exactly 0 ns
 *   bucket i        [2^(i-1), 2^i) ns           (1 <= i <= 30)
 *   bucket 31       >= 2^30 ns (about 1.07 s)
 *
 * Every group of fields has a VIREO_TELEMETRY_* bit in `sources`: a field
 * whose source is off reads 0, and 0 then means "not measured", not "none".
 */
#ifndef VIREO_TELEMETRY_H
#define VIREO_TELEMETRY_H

/* BPF programs (bpf/vireo.bpf.c) include only the constants and the slot
 * functions: they are built against vmlinux.h, not libc's <stdint.h>. */
#ifndef VIREO_TELEMETRY_CONSTANTS_ONLY
#include <stdint.h>
#endif

#define VIREO_TELEMETRY_VERSION 1
#define VIREO_HIST_BUCKETS 32
/* User-space exits are indexed by KVM_EXIT_* (the kvm_run exit_reason). */
#define VIREO_UEXIT_REASONS 64
/* In-kernel exits are indexed by a slot of the hardware exit reason (VMX
 * basic exit reason, or SVM exit code): see vireo_kexit_slot(). */
#define VIREO_KEXIT_SLOTS 384
#define VIREO_NAME_MAX 64

/* Where the numbers came from (bits of `sources`). */
#define VIREO_TELEMETRY_VMM_COUNTERS (1u << 0) /* the vCPU threads' own exit counters */
#define VIREO_TELEMETRY_BINARY_STATS (1u << 1) /* KVM_GET_STATS_FD */
#define VIREO_TELEMETRY_VCPU_TIME (1u << 2)    /* BPF: kvm_fpu (KVM_RUN entry) + kvm_userspace_exit */
#define VIREO_TELEMETRY_KERNEL_EXITS (1u << 3) /* BPF: kvm_exit -> kvm_entry */
#define VIREO_TELEMETRY_RUNQUEUE (1u << 4)     /* BPF: sched_wakeup/sched_switch */
#define VIREO_TELEMETRY_BLK (1u << 5)          /* BPF: io_uring + kvm notify/irq */
/* kvm_exit/kvm_entry are attached but have never fired although the vCPU
 * ran: this KVM (e.g. the nested PVM flavour) handles exits outside the
 * VMX/SVM path that fires them. The kexit_* fields are then not measured. */
#define VIREO_TELEMETRY_KERNEL_EXITS_SILENT (1u << 16)

/* Instruction set of the in-kernel exit reasons (kvm_exit's `isa`). */
#define VIREO_ISA_UNKNOWN 0
#define VIREO_ISA_VMX 1
#define VIREO_ISA_SVM 2

/* In-kernel exit reason -> slot in kexit_count[]: VMX basic exit reasons
 * (< 256) and SVM exit codes 0x000-0x0ff keep their value; SVM's
 * 0x400-0x47e (NPF, AVIC, VMGEXIT) go to 256-382; anything else to 383. */
static inline unsigned int vireo_kexit_slot(unsigned int reason) {
    if (reason < 256) return reason;
    if (reason >= 0x400 && reason < 0x400 + (VIREO_KEXIT_SLOTS - 256 - 1)) return 256 + (reason - 0x400);
    return VIREO_KEXIT_SLOTS - 1;
}
/* The reason a slot stands for (0xffffffff: "other"). */
static inline unsigned int vireo_kexit_reason(unsigned int slot) {
    if (slot < 256) return slot;
    if (slot < VIREO_KEXIT_SLOTS - 1) return 0x400 + (slot - 256);
    return 0xffffffffu;
}

#ifndef VIREO_TELEMETRY_CONSTANTS_ONLY
struct vireo_hist {
    uint64_t bucket[VIREO_HIST_BUCKETS];
};

/* One vCPU. Times are nanoseconds, counts are events since the vCPU started
 * (monotonic: a reader takes differences between two snapshots). */
struct vireo_vcpu_telemetry {
    uint32_t vcpu;      /* index in its guest */
    int32_t tid;        /* its thread ("CPU N/g<guest>") */
    uint32_t sources;   /* VIREO_TELEMETRY_* */
    uint32_t kexit_isa; /* VIREO_ISA_* */

    /* VMM counters: KVM_RUN calls and exits by reason, as the vCPU thread
     * counted them (interrupted calls -- EINTR/EAGAIN -- are not exits). */
    uint64_t vmm_runs;
    uint64_t vmm_exits[VIREO_UEXIT_REASONS];

    /* (1) time inside KVM_RUN's run loop (the guest ran, or KVM handled
     * exits in the kernel: from loading the guest FPU state to the return)
     * versus the time between a return and the next entry -- the VMM
     * handling the exit in user space, plus the ioctl's own syscall entry
     * and exit -- attributed to the exit reason KVM_RUN returned with. */
    uint64_t runs; /* KVM_RUN calls seen */
    uint64_t in_kvm_run_ns;
    struct vireo_hist kvm_run_hist;         /* one KVM_RUN call */
    uint64_t uexits[VIREO_UEXIT_REASONS];   /* returns with 0, by exit_reason */
    uint64_t uexit_ns[VIREO_UEXIT_REASONS]; /* user-space handling time, by reason */
    struct vireo_hist uexit_hist;           /* one user-space handling interval */
    uint64_t interrupted_runs;              /* returns with an error (EINTR: a kick) */
    uint64_t interrupted_ns;                /* user-space time after those */

    /* (2) in-kernel exits: every hardware exit (kvm_exit) to the next guest
     * entry (kvm_entry), by hardware reason slot. Exits that went on to user
     * space are included; their latency includes the user-space time. */
    uint64_t kexits;
    uint64_t kexit_ns;
    struct vireo_hist kexit_hist;
    uint64_t kexit_count[VIREO_KEXIT_SLOTS];
    uint64_t kexit_slot_ns[VIREO_KEXIT_SLOTS];

    /* (3) run-queue wait: runnable (woken, or preempted while running) to
     * running again, runqlat-style. */
    uint64_t runq_waits;
    uint64_t runq_wait_ns;
    struct vireo_hist runq_hist;

    /* (4) KVM's binary stats fd (no BPF), by descriptor name. */
    uint64_t kvm_exits;               /* "exits": every hardware exit KVM counted */
    uint64_t kvm_io_exits;            /* "io_exits" */
    uint64_t kvm_mmio_exits;          /* "mmio_exits" */
    uint64_t kvm_signal_exits;        /* "signal_exits" */
    uint64_t kvm_irq_exits;           /* "irq_exits" */
    uint64_t kvm_halt_exits;          /* "halt_exits" */
    uint64_t kvm_halt_wakeup;         /* "halt_wakeup" */
    uint64_t kvm_insn_emulation;      /* "insn_emulation" */
    uint64_t halt_successful_poll;    /* "halt_successful_poll" */
    uint64_t halt_attempted_poll;     /* "halt_attempted_poll" */
    uint64_t halt_poll_success_ns;    /* "halt_poll_success_ns" */
    uint64_t halt_poll_fail_ns;       /* "halt_poll_fail_ns" */
    uint64_t halt_wait_ns;            /* "halt_wait_ns": time halted, not polling */
    struct vireo_hist halt_wait_hist; /* "halt_wait_hist" */
};

/* One virtio-blk device: each request's latency in three stages.
 *  notify -> submit:   the guest's queue notify (its MMIO write, seen by KVM)
 *                      to the io_uring submission of the request; requests
 *                      submitted without a fresh notify (found in the same
 *                      pass over the queue) count from the notify that
 *                      started the pass;
 *  submit -> complete: io_uring submission to completion (the host I/O);
 *  complete -> irq:    completion to KVM raising the device's interrupt (the
 *                      next one: a guest that suppresses interrupts and
 *                      polls sees its completions earlier than this says --
 *                      compare `interrupted` with `completed`).
 * Counted per tagged io_uring submission: a request the device resubmits
 * (a short transfer) counts once per submission. */
struct vireo_blk_telemetry {
    uint32_t device; /* index among this guest's blk devices */
    uint32_t sources;
    uint64_t submitted;     /* tagged io_uring submissions seen */
    uint64_t completed;     /* ... and their completions */
    uint64_t failed;        /* completions with res < 0 (counted in completed too) */
    uint64_t no_notify;     /* submissions with no guest notify before them */
    uint64_t interrupted;   /* completions whose interrupt was seen (stage 3 measured) */
    uint64_t uninterrupted; /* completions that got no interrupt while 256 newer ones
                               completed (a polling guest): no stage 3 */
    uint64_t lost;          /* requests not tracked: the in-flight table was full */
    uint64_t notify_to_submit_ns, submit_to_complete_ns, complete_to_irq_ns;
    struct vireo_hist notify_to_submit_hist;
    struct vireo_hist submit_to_complete_hist;
    struct vireo_hist complete_to_irq_hist;
};

/* One guest: the sum over its vCPUs of the main numbers. */
struct vireo_guest_telemetry {
    char name[VIREO_NAME_MAX];
    uint32_t version; /* VIREO_TELEMETRY_VERSION */
    uint32_t vcpu_count;
    uint32_t blk_count;
    uint32_t sources;      /* bits present on every vCPU */
    uint64_t timestamp_ns; /* CLOCK_MONOTONIC of the snapshot */
    uint64_t runs, in_kvm_run_ns;
    uint64_t uexits, uexit_ns; /* all reasons */
    uint64_t kexits, kexit_ns;
    uint64_t runq_waits, runq_wait_ns;
    uint64_t kvm_exits, halt_wait_ns;
};

#ifdef __cplusplus
#include <vector>

namespace vireo {

/* A snapshot of one guest, as the control socket and the controller get it. */
struct Telemetry {
    vireo_guest_telemetry guest{};
    std::vector<vireo_vcpu_telemetry> vcpus;
    std::vector<vireo_blk_telemetry> blk;
};

}  // namespace vireo
#endif /* __cplusplus */
#endif /* !VIREO_TELEMETRY_CONSTANTS_ONLY */

#endif
