# testguest-smp: the ring-3 test guest's smp workload on 2 vCPUs under real KVM.
run() {
    needs_vireo
    vm_testguest smp --cpus 2
    expect_status 0
}
