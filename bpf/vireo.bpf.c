// vireo's eBPF probes: where each vCPU's time goes, how long it waits for a
// host CPU, how long each exit and each virtio-blk request takes. One
// source per probe, each with its maps and programs (the loader,
// probe_set.cpp, attaches each probe's programs on their own so one
// failing leaves the others):
//   vcpu_time.bpf.c     vcpu-time     KVM_RUN boundaries (kvm_fpu) + kvm_userspace_exit
//   kernel_exits.bpf.c  kernel-exits  kvm_exit -> kvm_entry
//   runqueue.bpf.c      runqueue      sched_wakeup/sched_wakeup_new/sched_switch
//   blk.bpf.c           blk           io_uring submit/complete, the guest's queue
//                                     notify and its interrupt
// This file holds what they share (probe_common.bpf.h): the license, the
// process id and the thread filter map. The Makefile links the five objects
// into one, vireo.bpf.o, and makes its skeleton.
//
// Counters and histograms live in per-CPU arrays, so the hot path adds to
// its own CPU's copy with plain increments; the loader sums them.
#define VIREO_BPF_DEFINE_SHARED
#include "probe_common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
