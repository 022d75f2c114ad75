# boot_to_init (L1 side of tests/bench/boot_to_init.sh): time from starting
# the VMM to the guest's init, vireo vs QEMU microvm in its fastest
# configuration, same kernel, initramfs and "console=ttyS0 quiet" command
# line; one warm-up boot each (it also fills L1's 9p cache), then ROUNDS
# boots each, interleaved. Both are timed to the console line
# "vireo-init: boot complete" (QEMU has no boot-complete device); vireo's
# own boot_complete_us (the Firecracker-style marker) is a second result.
# With --vmm qemu the subject is QEMU too: a check of the method (ratio ~1).
guest_script() {
    printf '#!/bin/sh\nexit 0\n'
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# bench_boot ROLE VMM ROUND: one boot; ROLE (subject|baseline) names the
# files in JOB_DIR that collect its times.
bench_boot() {
    local role=$1 vmm=$2 round=$3
    vm_linux --vmm "$vmm" --cpus 1 --mem 256M
    if [[ $STATUS != 0 || -z $INIT_MS ]]; then
        fail "$vmm round $round: exit status $STATUS, init line ${INIT_MS:+seen}${INIT_MS:-not seen}"
        return 1
    fi
    vh "INFO boot_to_init $vmm round $round: init line at ${INIT_MS} ms${BOOT_US:+, marker at $((BOOT_US / 1000)) ms}, exit after ${ELAPSED_MS} ms"
    [[ $round == warm-up ]] && return 0
    echo "$INIT_MS" >>"$JOB_DIR/$role.init_ms"
    [[ -n $BOOT_US ]] && echo $((BOOT_US / 1000)) >>"$JOB_DIR/$role.marker_ms"
    return 0
}

run() {
    local subject=$VMM
    [[ $subject == qemu || -x $BUILD/vireo ]] || { fail "$BUILD/vireo not built"; return 0; }
    bench_boot subject "$subject" warm-up || return 0
    bench_boot baseline qemu warm-up || return 0
    local i
    for ((i = 1; i <= ROUNDS; i++)); do
        # alternate who goes first so drift in L1 hits both alike
        if ((i % 2)); then
            bench_boot subject "$subject" "$i" && bench_boot baseline qemu "$i" || return 0
        else
            bench_boot baseline qemu "$i" && bench_boot subject "$subject" "$i" || return 0
        fi
    done
    local v q m
    v=$(median <"$JOB_DIR/subject.init_ms") q=$(median <"$JOB_DIR/baseline.init_ms")
    vh "JSON $(printf '{"name":"boot_to_init_ms","value":%s,"unit":"ms (lower is better)","baseline":"qemu-microvm","baseline_value":%s,"ratio":%s}' \
        "$v" "$q" "$(ratio "$v" "$q")")"
    if [[ -s $JOB_DIR/subject.marker_ms ]]; then
        m=$(median <"$JOB_DIR/subject.marker_ms")
        vh "JSON $(printf '{"name":"boot_complete_marker_ms","value":%s,"unit":"ms (lower is better; vireo boot_complete_us vs QEMU console line)","baseline":"qemu-microvm","baseline_value":%s,"ratio":%s}' \
            "$m" "$q" "$(ratio "$m" "$q")")"
    elif [[ $subject == vireo ]]; then
        fail "vireo never logged boot_complete_us"
    fi
}
