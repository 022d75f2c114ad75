// The runqueue probe: how long each vCPU thread waits on a host run queue
// between becoming runnable and getting a CPU.
#include "probe_common.bpf.h"

// max_entries of the per-vCPU maps is set by the loader to the vCPU count.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vireo_runq);
} runq SEC(".maps");

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
