# reboot: a guest reset (`reboot -f`) ends vireo with status 0
# (VIREO_EXIT_OK, include/vireo/exit_status.h) instead of rebooting it.
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo "guest: rebooting"
reboot -f
sleep 30
echo "guest: still running after reboot -f"
SCRIPT
}

run() {
    vm_linux --cpus 1 --mem 256M
    expect_status 0 "guest reset: VIREO_EXIT_OK"
    expect_console 'guest: rebooting'
    expect_no_console 'still running after reboot'
    # vireo must not boot the kernel a second time
    (($(grep -ac 'vireo-init: boot complete' "$CONSOLE") <= 1)) || fail "the guest booted again after reboot -f"
}
