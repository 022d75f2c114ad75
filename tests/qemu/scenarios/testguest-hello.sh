# testguest-hello: the ring-3 test guest's hello workload under real KVM (L1).
run() {
    needs_vireo
    vm_testguest hello
    expect_status 0
}
