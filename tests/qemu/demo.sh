# The demo (tools/demo on a host without fast virtualization): one L2 guest
# whose console is shown live, running a short script, then powering off.
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo
echo "=== vireo demo guest ==="
echo "\$ uname -a"; uname -a
echo "\$ nproc"; nproc
echo "\$ free -m"; free -m
echo "=== powering off ==="
SCRIPT
}

run() {
    vm_linux --cpus 2 --mem 512M --show
    expect_status 0 "guest powered off"
}
