// The kernel-exits probe: exits KVM handles without returning to user
// space, by reason, from kvm_exit to the next kvm_entry (kvm_exit as a
// classic tracepoint: only that form carries the exit reason).
#include "probe_common.bpf.h"

// max_entries of the per-vCPU maps is set by the loader to the vCPU count.
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
