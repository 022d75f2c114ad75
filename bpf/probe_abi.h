/* What the BPF programs (bpf/<probe>.bpf.c) and their C++ loader (probe_set.cpp
 * share: map keys and values, and the user_data contract with the
 * virtio-blk I/O thread. Plain C: compiled for -target bpf (after vmlinux.h,
 * which provides the __u64 types) and for the host. */
#ifndef VIREO_BPF_PROBE_ABI_H
#define VIREO_BPF_PROBE_ABI_H

#ifdef __bpf__
#define VIREO_TELEMETRY_CONSTANTS_ONLY
#else
#include <linux/types.h>
#endif
#include "vireo/telemetry.h" /* bucket and reason counts, vireo_kexit_slot() */

#define VIREO_BPF_BLK_DEVICES 16
/* Completions of one device waiting for its interrupt (a ring). */
#define VIREO_BPF_BLK_RING 256

/* ---------------------------------------------------------- filter map
 * vireo_threads: tid -> struct vireo_thread. Only registered vCPU threads
 * are measured; the VMM adds each one before its first KVM_RUN. */
#define VIREO_ROLE_VCPU 1u

struct vireo_thread {
    __u32 slot; /* vCPU slot: index into the per-vCPU maps */
    __u32 role; /* VIREO_ROLE_* */
    /* What the programs remember between two events of this thread, kept
     * here so one lookup finds it (the VMM registers it zeroed). */
    __u64 run_enter_ns; /* vcpu-time: inside KVM_RUN since (0: not inside) */
    __u64 run_exit_ns;  /* vcpu-time: KVM_RUN returned at (0: charged already) */
    __u32 exit_reason;  /* vcpu-time: kvm_userspace_exit's reason of that return */
    __s32 exit_errno;   /*            ... and its errno */
    __u64 kexit_ns;     /* kernel-exits: the pending kvm_exit at (0: none) */
    __u32 kexit_reason;
    __u32 pad;
    __u64 runnable_ns; /* runqueue: runnable since (0: running or asleep) */
};

/* ---------------------------------------------------------- per-vCPU values
 * Per-CPU arrays indexed by vCPU slot: each CPU adds to its own copy without
 * atomics; the loader sums the copies. */
struct vireo_vcpu_time {
    __u64 runs;
    __u64 in_run_ns;
    __u64 run_hist[VIREO_HIST_BUCKETS];
    __u64 uexits[VIREO_UEXIT_REASONS];
    __u64 uexit_ns[VIREO_UEXIT_REASONS];
    __u64 uexit_hist[VIREO_HIST_BUCKETS];
    __u64 interrupted;
    __u64 interrupted_ns;
};

struct vireo_kexit_totals {
    __u64 exits;
    __u64 ns;
    __u64 hist[VIREO_HIST_BUCKETS];
    __u64 isa; /* kvm_exit's isa; the loader takes the max over CPUs, not the sum */
};

/* Per-CPU array indexed by slot * VIREO_KEXIT_SLOTS + reason slot. */
struct vireo_kexit_by_reason {
    __u64 count;
    __u64 ns;
};

struct vireo_runq {
    __u64 waits;
    __u64 wait_ns;
    __u64 hist[VIREO_HIST_BUCKETS];
};

/* ---------------------------------------------------------- virtio-blk
 * The contract with the I/O thread (vmm/io, vmm/devices/virtio):
 *  - every io_uring SQE of a virtio-blk request carries
 *      user_data = VIREO_BLK_USER_DATA(device, request_id)
 *    (device < VIREO_BPF_BLK_DEVICES, request_id any 48-bit value unique
 *    among that device's requests in flight); SQEs of one request that are
 *    linked share nothing special -- each tagged SQE counts as one request,
 *    so a request should carry the tag on exactly one SQE (the data I/O);
 *  - the device registers, through ProbeSet::add_blk_device, the guest
 *    physical address of its QueueNotify register and its GSI (Machine
 *    does this for every --disk);
 *  - a device's requests all go through one io_uring (io_uring posts one
 *    ring's completions one at a time: the completion ring below relies on
 *    that).
 * Other SQEs of the ring (eventfd reads, timeouts) carry other user_data
 * and are ignored. Submissions are taken from any thread of this process
 * (the filter is the process and the tag: an SQPOLL thread or io-wq worker
 * may submit), completions by (ring, user_data) from any context. */
#define VIREO_BLK_TAG 0xb1ull
#define VIREO_BLK_USER_DATA(device, request_id) \
    ((VIREO_BLK_TAG << 56) | ((__u64)((device)&0xff) << 48) | ((__u64)(request_id)&0xffffffffffffull))
#define VIREO_BLK_IS_TAGGED(user_data) (((user_data) >> 56) == VIREO_BLK_TAG)
#define VIREO_BLK_DEVICE(user_data) ((__u32)(((user_data) >> 48) & 0xff))
/* The request id back (e.g. the address of the request's completion
 * object: user-space addresses fit in 47 bits, so a pointer is a valid id). */
#define VIREO_BLK_REQUEST_ID(user_data) ((user_data)&0xffffffffffffull)

struct vireo_blk_key {
    __u64 ring; /* the io_ring_ctx: user_data is only unique per ring */
    __u64 user_data;
};

struct vireo_blk_request {
    __u64 submit_ns;
};

struct vireo_blk_stats {
    __u64 submitted;
    __u64 completed;
    __u64 failed;
    __u64 no_notify;
    __u64 interrupted;
    __u64 uninterrupted;
    __u64 lost;
    __u64 stage_ns[3];
    __u64 hist[3][VIREO_HIST_BUCKETS];
};

/* Written by several contexts: the notify by vCPU threads, submissions by the
 * I/O thread, completions by whichever task io_uring completes in, the
 * interrupt by the I/O thread or a kworker (irqfd). Single 8-byte fields
 * only, plus an atomic ring index. */
struct vireo_blk_device {
    __u64 pending_notify_ns; /* first guest notify not yet followed by a submission */
    __u64 batch_notify_ns;   /* the notify the submissions in progress answer */
    __u64 ring_head;         /* next completion to pair with an interrupt */
    __u64 ring_tail;         /* next free ring entry (atomic add) */
    __u64 draining;          /* one interrupt drains the ring at a time */
    __u64 has_irq;           /* the device registered a GSI */
    __u64 ring[VIREO_BPF_BLK_RING];
};

#define VIREO_BLK_STAGE_NOTIFY 0
#define VIREO_BLK_STAGE_IO 1
#define VIREO_BLK_STAGE_IRQ 2

/* ---------------------------------------------------------- histograms
 * fls64: the log2 bucket of a nanosecond value, as KVM's LOG_HIST does it
 * (0 -> 0, [2^(i-1), 2^i) -> i), clamped to the last bucket. */
static inline __u32 vireo_hist_bucket(__u64 x) {
    __u32 n = 0;
    if (x >= (1ull << 32)) {
        n += 32;
        x >>= 32;
    }
    if (x >= (1ull << 16)) {
        n += 16;
        x >>= 16;
    }
    if (x >= (1ull << 8)) {
        n += 8;
        x >>= 8;
    }
    if (x >= (1ull << 4)) {
        n += 4;
        x >>= 4;
    }
    if (x >= (1ull << 2)) {
        n += 2;
        x >>= 2;
    }
    if (x >= 2) {
        n += 1;
        x >>= 1;
    }
    n += (__u32)x;
    return n < VIREO_HIST_BUCKETS ? n : VIREO_HIST_BUCKETS - 1;
}

#endif
