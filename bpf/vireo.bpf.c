// vireo's eBPF probes: where each vCPU's time goes, how long it waits for a
// host CPU, how long each exit and each virtio-blk request takes.
//
// One object, four probes (the loader, probe_set.cpp, attaches each probe's
// programs on their own so one failing leaves the others):
//   vcpu-time     KVM_RUN boundaries (kvm_fpu) + kvm_userspace_exit
//   kernel-exits  kvm_exit -> kvm_entry (kvm_exit as a classic tracepoint:
//                 only that form carries the exit reason)
//   runqueue      sched_wakeup/sched_wakeup_new/sched_switch
//   blk           io_uring submit/complete keyed by our user_data, the guest's
//                 queue notify (kvm_mmio/kvm_fast_mmio) and its interrupt
//                 (kvm_set_irq)
//
// Only vireo's own threads are measured: the process id is fixed at load
// time (vireo_tgid), and each thread must be in vireo_threads (the VMM adds
// them). Counters and histograms live in per-CPU arrays, so the hot path
// adds to its own CPU's copy with plain increments; the loader sums them.
//
// CO-RE: built against a vmlinux.h generated from the build machine's BTF
// (Makefile); libbpf relocates every field access against the running
// kernel's BTF at load time. Types a kernel may lack or lay out differently
// (tracepoint records of kvm and io_uring, task_struct's state) are declared
// here as ___vireo flavours with only the fields we read.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "probe_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KVM_TRACE_MMIO_WRITE 2
#define PF_KTHREAD 0x00200000

// Set by the loader before load.
const volatile __u32 vireo_tgid = 0;

// ---------------------------------------------------------------- maps
// max_entries of the per-vCPU maps is set by the loader to the vCPU count.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct vireo_thread);
} vireo_threads SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vireo_vcpu_time);
} vcpu_time SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vireo_kexit_totals);
} kexit_totals SEC(".maps");

// Indexed by slot * VIREO_KEXIT_SLOTS + vireo_kexit_slot(reason).
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, VIREO_KEXIT_SLOTS);
    __type(key, __u32);
    __type(value, struct vireo_kexit_by_reason);
} kexit_reasons SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vireo_runq);
} runq SEC(".maps");

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

// ---------------------------------------------------------------- helpers
static __always_inline struct vireo_thread *own_thread(void)
{
    __u64 id = bpf_get_current_pid_tgid();
    if ((__u32)(id >> 32) != vireo_tgid) return 0;
    __u32 tid = (__u32)id;
    return bpf_map_lookup_elem(&vireo_threads, &tid);
}

static __always_inline struct vireo_thread *own_vcpu(void)
{
    struct vireo_thread *t = own_thread();
    return t && t->role == VIREO_ROLE_VCPU ? t : 0;
}

static __always_inline struct vireo_thread *task_vcpu(struct task_struct *p)
{
    if ((__u32)p->tgid != vireo_tgid) return 0;
    __u32 tid = (__u32)p->pid;
    struct vireo_thread *t = bpf_map_lookup_elem(&vireo_threads, &tid);
    return t && t->role == VIREO_ROLE_VCPU ? t : 0;
}

static __always_inline void hist_add(__u64 *hist, __u64 ns)
{
    __u32 b = vireo_hist_bucket(ns);
    if (b < VIREO_HIST_BUCKETS) hist[b]++;
}

// ---------------------------------------------------------------- vcpu-time
// KVM_RUN's boundaries from KVM's own tracepoints, which fire only in vCPU
// threads: kvm_fpu(1) when KVM_RUN loads the guest FPU state on entry,
// kvm_fpu(0) when it puts it back on the way out, then kvm_userspace_exit
// with the reason. (raw_syscalls' sys_enter/sys_exit would bracket the
// ioctl too, but they run for every syscall of every process on the host
// and switch all of them to the slow syscall path.)

// Entering KVM_RUN: the user-space interval since the previous return ends,
// charged to the exit reason that return carried. Only load=1 matters: the
// way out is timed at kvm_userspace_exit, right after kvm_fpu(0), which
// saves a map lookup per exit. (An INIT event inside KVM_RUN puts and
// reloads the FPU state; the reload then restarts the in-run interval.)
SEC("tp_btf/kvm_fpu")
int BPF_PROG(vt_fpu, int load)
{
    if (!load) return 0;
    struct vireo_thread *t = own_vcpu();
    if (!t) return 0;
    __u64 now = bpf_ktime_get_ns();
    if (t->run_exit_ns) {
        __u32 slot = t->slot;
        struct vireo_vcpu_time *v = bpf_map_lookup_elem(&vcpu_time, &slot);
        if (v) {
            __u64 d = now - t->run_exit_ns;
            if (t->exit_errno == 0) {
                __u32 r = t->exit_reason < VIREO_UEXIT_REASONS ? t->exit_reason : 0;
                v->uexit_ns[r] += d;
                hist_add(v->uexit_hist, d);
            } else {
                v->interrupted_ns += d;
            }
        }
        t->run_exit_ns = 0;
    }
    t->run_enter_ns = now;
    return 0;
}

// KVM_RUN returns: fired by KVM just before the ioctl returns, for every
// return (errno 0: an exit to handle; EINTR: a signal or immediate_exit).
// Counted like the VMM counts (vcpu_runner.cpp): reasons >= 64 go to 0.
SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(vt_userspace_exit, __u32 reason, int err)
{
    struct vireo_thread *t = own_vcpu();
    if (!t) return 0;
    __u32 slot = t->slot;
    struct vireo_vcpu_time *v = bpf_map_lookup_elem(&vcpu_time, &slot);
    if (!v) return 0;
    __u64 now = bpf_ktime_get_ns();
    if (t->run_enter_ns) {
        __u64 d = now - t->run_enter_ns;
        v->in_run_ns += d;
        hist_add(v->run_hist, d);
        t->run_enter_ns = 0;
    }
    t->exit_reason = reason;
    t->exit_errno = err;
    t->run_exit_ns = now;
    v->runs++;
    if (err == 0)
        v->uexits[reason < VIREO_UEXIT_REASONS ? reason : 0]++;
    else
        v->interrupted++;
    return 0;
}

// ---------------------------------------------------------------- kernel-exits
struct trace_event_raw_kvm_exit___vireo {
    unsigned int exit_reason;
    __u32 isa;
} __attribute__((preserve_access_index));

SEC("tp/kvm/kvm_exit")
int kx_exit(struct trace_event_raw_kvm_exit___vireo *ctx)
{
    struct vireo_thread *t = own_vcpu();
    if (!t) return 0;
    __u32 slot = t->slot;
    struct vireo_kexit_totals *tot = bpf_map_lookup_elem(&kexit_totals, &slot);
    if (!tot) return 0;
    __u32 reason = ctx->exit_reason;
    __u32 key = slot * VIREO_KEXIT_SLOTS + vireo_kexit_slot(reason);
    struct vireo_kexit_by_reason *r = bpf_map_lookup_elem(&kexit_reasons, &key);
    if (!r) return 0;
    tot->exits++;
    tot->isa = ctx->isa;
    r->count++;
    t->kexit_ns = bpf_ktime_get_ns();
    t->kexit_reason = reason;
    return 0;
}

// Only the time of the entry matters, so the raw form (whose arguments
// differ between kernels) serves.
SEC("tp_btf/kvm_entry")
int kx_entry(void *ctx)
{
    struct vireo_thread *t = own_vcpu();
    if (!t) return 0;
    if (!t->kexit_ns) return 0;
    __u32 slot = t->slot;
    struct vireo_kexit_totals *tot = bpf_map_lookup_elem(&kexit_totals, &slot);
    __u32 key = slot * VIREO_KEXIT_SLOTS + vireo_kexit_slot(t->kexit_reason);
    struct vireo_kexit_by_reason *r = bpf_map_lookup_elem(&kexit_reasons, &key);
    if (!tot || !r) return 0;
    __u64 d = bpf_ktime_get_ns() - t->kexit_ns;
    t->kexit_ns = 0;
    tot->ns += d;
    hist_add(tot->hist, d);
    r->ns += d;
    return 0;
}

// ---------------------------------------------------------------- runqueue
// task_struct's state field was `state` (long) before 5.14, `__state` since.
struct task_struct___new {
    unsigned int __state;
} __attribute__((preserve_access_index));
struct task_struct___old {
    long state;
} __attribute__((preserve_access_index));

static __always_inline bool task_is_running(struct task_struct *p)
{
    struct task_struct___new *n = (void *)p;
    if (bpf_core_field_exists(n->__state)) return BPF_CORE_READ(n, __state) == 0;
    return BPF_CORE_READ((struct task_struct___old *)p, state) == 0;
}

static __always_inline void rq_runnable(struct task_struct *p)
{
    struct vireo_thread *t = task_vcpu(p);
    if (t) t->runnable_ns = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rq_wakeup, struct task_struct *p)
{
    rq_runnable(p);
    return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rq_wakeup_new, struct task_struct *p)
{
    rq_runnable(p);
    return 0;
}

// prev leaves the CPU: still runnable if it was preempted (it waits again
// from now), else it sleeps (forget any stale wakeup). next gets the CPU:
// its wait ends.
SEC("tp_btf/sched_switch")
int BPF_PROG(rq_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    struct vireo_thread *t = task_vcpu(prev);
    if (t) t->runnable_ns = (preempt || task_is_running(prev)) ? bpf_ktime_get_ns() : 0;
    t = task_vcpu(next);
    if (!t || !t->runnable_ns) return 0;
    __u32 slot = t->slot;
    struct vireo_runq *rq = bpf_map_lookup_elem(&runq, &slot);
    if (!rq) return 0;
    __u64 d = bpf_ktime_get_ns() - t->runnable_ns;
    t->runnable_ns = 0;
    rq->waits++;
    rq->wait_ns += d;
    hist_add(rq->hist, d);
    return 0;
}

// ---------------------------------------------------------------- blk
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
