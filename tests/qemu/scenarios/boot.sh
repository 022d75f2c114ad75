# boot: the stock Debian kernel boots to the mkguest /init under vireo; the
# init's boot-complete marker reaches vireo ("boot complete" in its log) and
# the guest's poweroff ends vireo with status 0.
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo "guest: kernel $(uname -r) up"
SCRIPT
}

run() {
    vm_linux --cpus 1 --mem 256M
    expect_status 0 "guest powered off"
    expect_console 'vireo-init: boot complete'
    expect_console 'guest: kernel .* up'
    expect_no_console 'boot marker write failed'
    expect_log 'boot complete'
}
