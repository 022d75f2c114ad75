# panic: a guest kernel panic (sysrq c) is reported through pvpanic (the
# guest's pvpanic_mmio driver binds ACPI QEMU0001 at port 0x505) and ends
# vireo with status 3 (VIREO_EXIT_GUEST_PANIC).
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
ls /sys/bus/platform/drivers/pvpanic-mmio/ 2>/dev/null | grep -q QEMU0001 && echo "guest: pvpanic bound" || echo "guest: pvpanic NOT bound"
echo "guest: panicking"
echo c >/proc/sysrq-trigger
sleep 30
SCRIPT
}

run() {
    needs_vireo
    vm_linux --cpus 1 --mem 256M
    expect_status 3 "VIREO_EXIT_GUEST_PANIC"
    expect_console 'guest: pvpanic bound'
    expect_console 'guest: panicking'
}
