# virtio-balloon: Debian's virtio_balloon driver follows vireo's target.
# Boot 1 measures MemTotal/MemAvailable with an idle balloon; boot 2 sets a
# 256 MiB target at once and 0 again 3 s after the guest has reached it
# (vireo's test-only target-at and target-after: under TCG the guest takes
# 20 to 90 s to inflate 256 MiB, so a fixed time would check a half-full
# balloon), and the guest samples /proc/meminfo until it has seen the drop
# and the recovery. The guest's stats reach vireo (stats=1).
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
mem() { awk -v k="$1" '$1 == k":" {print $2}' /proc/meminfo; }
if grep -q balloon_watch /proc/cmdline; then
    low_t=$(mem MemTotal) low_a=$(mem MemAvailable) i=0
    while [ $i -lt 400 ]; do
        t=$(mem MemTotal) a=$(mem MemAvailable)
        [ "$t" -lt "$low_t" ] && low_t=$t
        [ "$a" -lt "$low_a" ] && low_a=$a
        # Recovered: 200 MiB above the lowest point.
        [ "$t" -gt $((low_t + 204800)) ] && break
        sleep 0.5
        i=$((i + 1))
    done
    echo "guest: mt_low=$low_t ma_low=$low_a"
    sleep 1
fi
echo "guest: mt_end=$(mem MemTotal) ma_end=$(mem MemAvailable)"
SCRIPT
}

run() {
    needs_vireo
    vm_linux --mem 512M -- --balloon stats=1
    expect_status 0 "guest powered off (idle balloon)"
    local total0 avail0
    total0=$(console_value mt_end) avail0=$(console_value ma_end)
    [[ $total0 =~ ^[0-9]+$ ]] || { fail "boot 1 printed no MemTotal"; return; }

    vm_linux --mem 512M --append balloon_watch --timeout 260 -- --balloon stats=1,target-at=0:256,target-after=3:0
    expect_status 0 "guest powered off (balloon inflated and deflated)"
    local low_t low_a total1
    low_t=$(console_value mt_low) low_a=$(console_value ma_low) total1=$(console_value mt_end)
    [[ $low_t =~ ^[0-9]+$ && $total1 =~ ^[0-9]+$ ]] || { fail "boot 2 printed no MemTotal samples"; return; }
    # 256 MiB = 262144 kB leave MemTotal (the driver adjusts managed pages).
    ((total0 - low_t >= 250000)) || fail "inflating 256 MiB lowered MemTotal by only $((total0 - low_t)) kB ($total0 -> $low_t)"
    ((avail0 - low_a >= 200000)) || fail "inflating 256 MiB lowered MemAvailable by only $((avail0 - low_a)) kB"
    ((total0 - total1 <= 8192)) || fail "deflating did not give the memory back: MemTotal $total1 kB, $total0 kB before"
    expect_log 'virtio-balloon: first stats from the guest:'
    expect_log 'guest reached the target of 65536 pages'
    expect_log 'guest reached the target of 0 pages'
}
