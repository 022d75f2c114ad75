# panic-restart: a stock Linux guest that panics (sysrq c) is detected
# through pvpanic and restarted in the same vireo process under
# `--restart on-failure`; after the restart it boots to init again. It
# panics on every boot, so with max_failures=2 the second panic leaves it
# `failed` and `vireo run` ends with the fault's status (3).
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo "guest: up, panicking"
echo c >/proc/sysrq-trigger
sleep 30
SCRIPT
}

run() {
    needs_vireo
    vm_linux --cpus 1 --mem 256M --timeout $((L2_TIMEOUT * 2)) -- \
        --restart on-failure,backoff_initial_s=0.5,max_failures=2
    expect_status 3 "VIREO_EXIT_GUEST_PANIC after the last allowed restart"
    local boots panics
    boots=$(grep -ac 'vireo-init: boot complete' "$CONSOLE")
    panics=$(grep -ac 'guest: up, panicking' "$CONSOLE")
    ((boots == 2)) || fail "booted to init $boots times, expected 2 (the first boot and one restart)"
    ((panics == 2)) || fail "panicked $panics times, expected 2"
    expect_log 'stopped \(panic: pvpanic: guest panicked\)'
    expect_log 'failed: 2 failures'
}
