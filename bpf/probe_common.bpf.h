// What every probe's program shares (bpf/vireo.bpf.c defines it; each
// probe's .bpf.c declares it through this header): vireo's process id, set
// by the loader before load, and the thread filter map -- only vireo's own
// threads are measured, and each must be registered (the VMM adds its vCPU
// threads with their slot). The probes' objects are linked into one
// (Makefile: bpftool gen object), so these exist once for all of them.
//
// CO-RE: built against a vmlinux.h generated from the build machine's BTF
// (Makefile); libbpf relocates every field access against the running
// kernel's BTF at load time. Types a kernel may lack or lay out differently
// (tracepoint records of kvm and io_uring, task_struct's state) are declared
// in the probe that reads them as ___vireo flavours with only those fields.
#pragma once

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "probe_abi.h"

#define VIREO_THREADS_MAP                      \
    __uint(type, BPF_MAP_TYPE_HASH);           \
    __uint(max_entries, 1024);                 \
    __type(key, __u32);                        \
    __type(value, struct vireo_thread)

#ifdef VIREO_BPF_DEFINE_SHARED
const volatile __u32 vireo_tgid = 0;
struct {
    VIREO_THREADS_MAP;
} vireo_threads SEC(".maps");
#else
extern const volatile __u32 vireo_tgid;
extern struct {
    VIREO_THREADS_MAP;
} vireo_threads SEC(".maps");
#endif

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
