# smp-mem: --cpus 2 gives the guest 2 CPUs; --mem 512M gives it 512 MiB.
# Two memory checks: the RAM the kernel found in the e820 map ("Memory:
# A/BK available", B) is at least 98% of 512 MiB (only the legacy holes
# below 1 MiB may be missing) and at most 512 MiB; MemTotal, which also
# leaves out what the kernel keeps for itself (its image, struct pages:
# ~11% at 512 MiB for Debian's kernel; QEMU microvm gives 468296 kB), is at
# least 85% of 512 MiB.
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo "guest: nproc=$(nproc) cpuinfo=$(grep -c ^processor /proc/cpuinfo)"
echo "guest: memtotal_kb=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) e820_kb=$(dmesg | sed -n 's|.*Memory: [0-9]*K/\([0-9]*\)K available.*|\1|p')"
SCRIPT
}

run() {
    vm_linux --cpus 2 --mem 512M
    expect_status 0 "guest powered off"
    expect_console 'vireo-init: boot complete'
    local nproc cpuinfo mem e820 full=$((512 * 1024))
    nproc=$(console_value nproc) cpuinfo=$(console_value cpuinfo)
    mem=$(console_value memtotal_kb) e820=$(console_value e820_kb)
    [[ $nproc == 2 && $cpuinfo == 2 ]] || fail "guest sees nproc=${nproc:-?} cpuinfo=${cpuinfo:-?} CPUs, expected 2"
    if [[ $e820 =~ ^[0-9]+$ ]]; then
        ((e820 * 100 >= full * 98 && e820 <= full)) ||
            fail "guest kernel found ${e820} kB of RAM, expected 98-100% of 512 MiB (${full} kB)"
    else
        fail "guest printed no 'Memory: A/BK available' total"
    fi
    if [[ $mem =~ ^[0-9]+$ ]]; then
        ((mem * 100 >= full * 85 && mem <= full)) ||
            fail "guest MemTotal ${mem} kB is not within 85-100% of 512 MiB (${full} kB)"
    else
        fail "guest printed no MemTotal"
    fi
}
