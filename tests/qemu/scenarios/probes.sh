# probes: under real KVM (L1: Debian's kernel, BTF for vmlinux and modules)
# every eBPF probe attaches and fires. Cross-checks on the ring-3 test guest:
#  - in-kernel exits counted by kvm_exit are within 2% of KVM's own binary
#    stats `exits` (both count every hardware exit of the vCPU);
#  - user-space exits seen by BPF equal the vCPU thread's own counters.
# (On the build host's PVM KVM kvm_exit never fires: tests/kvm covers the
# rest there and checks that vireo reports the in-kernel exits as not measured.)
stats_value() { # stats_value LINE-PREFIX KEY: KEY=VALUE of the first "stats: PREFIX" log line
    grep -a "stats: $1" "$LOG" | head -1 | grep -oE "(^| )$2=[^ ]*" | head -1 | cut -d= -f2-
}

run() {
    needs_vireo
    VM_VMM=vireo
    run_vmm "$L2_TIMEOUT" "" -- "$BUILD/vireo" run --kernel "$BUILD/testguest" \
        --cmdline "workload=pio-loop:5000" --mem 64M --probes on --stats
    expect_status 0 "pio-loop powered off with every probe on"
    grep -aq 'stats: probes: vcpu-time on, kernel-exits on, runqueue on' "$LOG" ||
        fail "not every probe attached: $(grep -a 'probes' "$LOG" | head -2)"

    local kexits kvm_exits
    kexits=$(stats_value "vcpu0 kexit:" exits)
    kvm_exits=$(stats_value "vcpu0 kvm:" exits)
    if [[ $kexits =~ ^[0-9]+$ && $kvm_exits =~ ^[0-9]+$ && $kvm_exits -gt 0 ]]; then
        local diff=$((kexits > kvm_exits ? kexits - kvm_exits : kvm_exits - kexits))
        ((diff * 100 <= kvm_exits * 2)) ||
            fail "kvm_exit counted $kexits in-kernel exits, binary stats say $kvm_exits (more than 2% apart)"
        ((kexits >= 5000)) || fail "only $kexits in-kernel exits for 5000 port writes"
    else
        fail "no in-kernel exit counts (kexit '${kexits}', kvm '${kvm_exits}'): $(grep -a 'vcpu0 k' "$LOG" | head -2)"
    fi

    local vmm bpf
    vmm=$(stats_value "vcpu0 vmm:" by_reason) bpf=$(stats_value "vcpu0 bpf:" by_reason)
    [[ -n $vmm && $vmm == "$bpf" ]] || fail "user-space exits: vCPU thread counted '$vmm', BPF '$bpf'"
}
