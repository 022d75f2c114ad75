// The vcpu-time probe: each vCPU thread's time inside KVM_RUN and in
// user space between runs, by the exit reason that ended the run.
#include "probe_common.bpf.h"

// max_entries of the per-vCPU maps is set by the loader to the vCPU count.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vireo_vcpu_time);
} vcpu_time SEC(".maps");

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
