// The blk probe: each virtio-blk request's three stages -- the guest's
// queue notify to the io_uring submission, submission to completion,
// completion to the interrupt -- keyed by the user_data tag vireo puts on
// its requests (bpf/probe_abi.h).
#include "probe_common.bpf.h"

#define KVM_TRACE_MMIO_WRITE 2
#define PF_KTHREAD 0x00200000

// max_entries of the per-vCPU maps is set by the loader to the vCPU count.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct vireo_blk_key);
    __type(value, struct vireo_blk_request);
} blk_inflight SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, VIREO_BPF_BLK_DEVICES);
    __type(key, __u64); // guest-physical address of QueueNotify
    __type(value, __u32); // device
} blk_notify SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, VIREO_BPF_BLK_DEVICES);
    __type(key, __u32); // GSI
    __type(value, __u32); // device
} blk_irq SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, VIREO_BPF_BLK_DEVICES);
    __type(key, __u32);
    __type(value, struct vireo_blk_device);
} blk_devices SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, VIREO_BPF_BLK_DEVICES);
    __type(key, __u32);
    __type(value, struct vireo_blk_stats);
} blk_stats SEC(".maps");

// Raw (tp_btf) tracepoints: cheaper than perf-event ones and no tracefs
// needed. Their arguments differ between kernels, but the io_kiocb they
// carry holds what we need in every version (CO-RE relocates the fields):
//   io_uring_submit_req(req)            6.2+   (was io_uring_submit_sqe(req, nonblock))
//   io_uring_complete(ctx, req, ...)    the rest of the arguments changed in 6.4
struct io_cqe___vireo {
    __u64 user_data;
    __s32 res;
} __attribute__((preserve_access_index));
struct io_kiocb___vireo {
    struct io_cqe___vireo cqe;
    void *ctx;
} __attribute__((preserve_access_index));

// Stage 1 ends: notify -> submission. A request's notify is the first guest
// notify not yet answered by a submission; requests submitted in the same
// run of submissions without a fresh notify share the notify that started
// it. (The notify is read and cleared without a lock: a notify landing
// exactly between the two is folded into the current run.)
static __always_inline int blk_submit(__u64 ring, __u64 user_data)
{
    if (!VIREO_BLK_IS_TAGGED(user_data)) return 0;
    if ((__u32)(bpf_get_current_pid_tgid() >> 32) != vireo_tgid) return 0;
    __u32 dev = VIREO_BLK_DEVICE(user_data);
    struct vireo_blk_stats *st = bpf_map_lookup_elem(&blk_stats, &dev);
    struct vireo_blk_device *d = bpf_map_lookup_elem(&blk_devices, &dev);
    if (!st || !d) return 0;
    __u64 now = bpf_ktime_get_ns();
    struct vireo_blk_key key = {.ring = ring, .user_data = user_data};
    struct vireo_blk_request req = {.submit_ns = now};
    if (bpf_map_update_elem(&blk_inflight, &key, &req, BPF_ANY)) {
        st->lost++;
        return 0;
    }
    st->submitted++;
    __u64 pending = d->pending_notify_ns;
    if (pending) {
        d->batch_notify_ns = pending;
        d->pending_notify_ns = 0;
    }
    __u64 notified = d->batch_notify_ns;
    if (!notified || notified > now) {
        st->no_notify++;
        return 0;
    }
    st->stage_ns[VIREO_BLK_STAGE_NOTIFY] += now - notified;
    hist_add(st->hist[VIREO_BLK_STAGE_NOTIFY], now - notified);
    return 0;
}

// The loader retargets this to io_uring_submit_sqe on kernels before 6.2.
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(blk_submit_req, void *req)
{
    struct io_kiocb___vireo *r = req;
    return blk_submit((__u64)BPF_CORE_READ(r, ctx), BPF_CORE_READ(r, cqe.user_data));
}

// Stage 2 ends: submission -> completion. Completions may run in an io-wq
// worker or task work, so they are matched by (ring, user_data), not by
// thread. The completion then waits in the device's ring for the interrupt.
// io_uring posts one ring's completions under its completion lock (or from
// its single issuer), so a device whose requests go through one io_uring
// has a single producer here; the interrupt side is the single consumer.
SEC("tp_btf/io_uring_complete")
int BPF_PROG(blk_complete, void *ring, void *req)
{
    struct io_kiocb___vireo *r = req;
    __u64 user_data = BPF_CORE_READ(r, cqe.user_data);
    if (!VIREO_BLK_IS_TAGGED(user_data)) return 0;
    struct vireo_blk_key key = {.ring = (__u64)ring, .user_data = user_data};
    struct vireo_blk_request *inflight = bpf_map_lookup_elem(&blk_inflight, &key);
    if (!inflight) return 0;
    __u64 now = bpf_ktime_get_ns(), submitted = inflight->submit_ns;
    int res = BPF_CORE_READ(r, cqe.res);
    bpf_map_delete_elem(&blk_inflight, &key);
    __u32 dev = VIREO_BLK_DEVICE(user_data);
    struct vireo_blk_stats *st = bpf_map_lookup_elem(&blk_stats, &dev);
    struct vireo_blk_device *d = bpf_map_lookup_elem(&blk_devices, &dev);
    if (!st || !d) return 0;
    st->completed++;
    if (res < 0) st->failed++;
    st->stage_ns[VIREO_BLK_STAGE_IO] += now - submitted;
    hist_add(st->hist[VIREO_BLK_STAGE_IO], now - submitted);
    if (!d->has_irq) return 0;
    __u64 tail = d->ring_tail;
    if (tail - d->ring_head >= VIREO_BPF_BLK_RING) {
        // 256 completions and no interrupt: the guest polls (interrupts
        // suppressed). Keep the newest; the oldest gets no stage 3.
        st->uninterrupted++;
        d->ring_head = tail - VIREO_BPF_BLK_RING + 1;
    }
    d->ring[tail & (VIREO_BPF_BLK_RING - 1)] = now;
    asm volatile("" ::: "memory"); // the entry before the index that publishes it
    d->ring_tail = tail + 1;
    return 0;
}

// The guest's queue notify, as KVM sees the MMIO write: in the vCPU thread,
// whether an ioeventfd takes it in the kernel or it exits to user space.
static __always_inline void blk_notify_at(__u64 gpa)
{
    if (!own_vcpu()) return;
    __u32 *dev = bpf_map_lookup_elem(&blk_notify, &gpa);
    if (!dev) return;
    __u32 i = *dev;
    struct vireo_blk_device *d = bpf_map_lookup_elem(&blk_devices, &i);
    if (d && !d->pending_notify_ns) d->pending_notify_ns = bpf_ktime_get_ns();
}

SEC("tp_btf/kvm_mmio")
int BPF_PROG(blk_notify_mmio, int type, int len, __u64 gpa)
{
    if (type == KVM_TRACE_MMIO_WRITE) blk_notify_at(gpa);
    return 0;
}

SEC("tp_btf/kvm_fast_mmio")
int BPF_PROG(blk_notify_fast_mmio, __u64 gpa)
{
    blk_notify_at(gpa);
    return 0;
}

struct blk_drain {
    struct vireo_blk_stats *st;
    struct vireo_blk_device *d;
    __u64 now;
};

// One completion waiting for the interrupt: its stage 3 ends now.
static long blk_drain_one(__u32 index, void *ctx)
{
    struct blk_drain *drain = ctx;
    struct vireo_blk_device *d = drain->d;
    __u64 head = d->ring_head;
    if (head == d->ring_tail) return 1;
    __u64 done = d->ring[head & (VIREO_BPF_BLK_RING - 1)];
    __u64 ns = drain->now > done ? drain->now - done : 0;
    struct vireo_blk_stats *st = drain->st;
    st->interrupted++;
    st->stage_ns[VIREO_BLK_STAGE_IRQ] += ns;
    hist_add(st->hist[VIREO_BLK_STAGE_IRQ], ns);
    d->ring_head = head + 1;
    return 0;
}

// Stage 3 ends: KVM raises the device's GSI -- from our process
// (KVM_IRQ_LINE) or from a kworker (irqfd injection). A kworker cannot be
// tied to a VM, so another VM raising the same GSI at that moment would be
// taken for ours.
SEC("tp_btf/kvm_set_irq")
int BPF_PROG(blk_set_irq, unsigned int irq, int level)
{
    if (level != 1) return 0;
    __u32 gsi = irq;
    __u32 *devp = bpf_map_lookup_elem(&blk_irq, &gsi);
    if (!devp) return 0;
    if ((__u32)(bpf_get_current_pid_tgid() >> 32) != vireo_tgid) {
        struct task_struct *task = bpf_get_current_task_btf();
        if (!(task->flags & PF_KTHREAD)) return 0;
    }
    __u32 dev = *devp;
    struct blk_drain drain = {
        .st = bpf_map_lookup_elem(&blk_stats, &dev),
        .d = bpf_map_lookup_elem(&blk_devices, &dev),
        .now = bpf_ktime_get_ns(),
    };
    if (!drain.st || !drain.d) return 0;
    __u64 pending = drain.d->ring_tail - drain.d->ring_head;
    if (pending > VIREO_BPF_BLK_RING) pending = VIREO_BPF_BLK_RING;
    // bpf_loop: the verifier checks the body once instead of unrolling
    // 256 iterations of histogram branches.
    bpf_loop((__u32)pending, blk_drain_one, &drain, 0);
    return 0;
}
