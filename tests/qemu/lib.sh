# tests/qemu/lib.sh — what scenarios, benchmarks and the demo use inside L1.
# Sourced by l1-runner (bash, chrooted into the host root: read-only over 9p,
# made writable by a tmpfs overlay, so writes never reach the host). The runner sets: REPO, BUILD, WORK (host dir holding the L2
# images, read-only here), VMM (vireo|qemu), L2_TIMEOUT, and per job
# JOB (its name), JOB_DIR (a scratch dir, in L1 memory), IMAGE (its image dir).
#
# A scenario file (tests/qemu/scenarios/NAME.sh) defines:
#   guest_script   optional: prints the /guest-script of its L2 image; the
#                  host builds that image with tools/mkguest before L1 boots
#   run            boots guests with vm_linux / vm_testguest and checks them
#                  with expect_* (each failed check is recorded, run goes on);
#                  skip "why" ends it as skipped
# and nothing else is needed: the harness finds it by its file name.

# ---------------------------------------------------------------- output
# Lines for the host start with "@@vh " (the host parses the L1 console).
vh() { printf '@@vh %s\n' "$*"; }

# ---------------------------------------------------------------- results
fail() {
    printf '%s\n' "$*" >>"$JOB_DIR/failures"
}
skip() {
    printf '%s\n' "$*" >"$JOB_DIR/skipped"
    exit 0
}

# ---------------------------------------------------------------- booting L2
# After each vm_* call:
#   STATUS      the VMM's exit status (124 = timed out, see L2_TIMEOUT)
#   CONSOLE     file: the guest console (the VMM's stdout)
#   LOG         file: the VMM's own log (its stderr)
#   ELAPSED_MS  wall time of the whole run
#   INIT_MS     wall time until the console said "vireo-init: boot complete"
#               (empty if it never did)
#   BOOT_US     vireo's boot_complete_us from its log (empty if not logged)
RUN_NO=0
INIT_LINE="vireo-init: boot complete"
RUN_DEADLINE=/tmp/vireo-l1/run-deadline
KILL_AFTER=5 # s from timeout's SIGTERM to its SIGKILL

now_us() { echo "${EPOCHREALTIME/./}"; }

# Copies stdin to stdout and writes, into file $1, the microseconds since
# $2 at which the first line containing INIT_LINE went by. With $3 = "tty"
# it also copies every line to the L1 console as it arrives (the demo).
stamp_console() {
    local out=$1 start=$2 show=${3:-} line seen=
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ -z $seen && $line == *"$INIT_LINE"* ]]; then
            seen=1
            echo $((${EPOCHREALTIME/./} - start)) >"$out"
        fi
        printf '%s\n' "$line"
        [[ -n $show ]] && printf '%s\n' "$line" >/dev/console
    done
}

# run_vmm TIMEOUT_S SHOW -- COMMAND...   (sets the variables above)
run_vmm() {
    local tmo=$1 show=$2
    shift 3
    RUN_NO=$((RUN_NO + 1))
    local base="$JOB_DIR/run$RUN_NO"
    CONSOLE=$base.console LOG=$base.log
    printf '%q ' "$@" >"$base.cmd"
    : >"$base.stamp"
    local start
    start=$(now_us)
    # For the runner's heartbeat: a run still going 30 s after timeout's
    # SIGKILL (sent KILL_AFTER s after its TERM) is stuck in L1's kernel
    # (see l1-runner).
    echo "$((EPOCHSECONDS + tmo + KILL_AFTER + 30)) $tmo $JOB" >"$RUN_DEADLINE"
    if [[ -n $show ]]; then
        timeout -k "$KILL_AFTER" "$tmo" "$@" </dev/null 2> >(tee "$LOG" >/dev/console) |
            stamp_console "$base.stamp" "$start" tty >"$CONSOLE"
        STATUS=${PIPESTATUS[0]}
        [[ -n ${!:-} ]] && wait $! 2>/dev/null # the tee of the log
    else
        timeout -k "$KILL_AFTER" "$tmo" "$@" </dev/null 2>"$LOG" | stamp_console "$base.stamp" "$start" >"$CONSOLE"
        STATUS=${PIPESTATUS[0]}
    fi
    rm -f "$RUN_DEADLINE"
    ELAPSED_MS=$((($(now_us) - start) / 1000))
    local us
    us=$(<"$base.stamp")
    INIT_MS=${us:+$((us / 1000))}
    BOOT_US=$(grep -aoE 'boot_complete_us[=: ]+[0-9]+' "$LOG" | head -1 | grep -oE '[0-9]+$')
    [[ $STATUS == 124 || $STATUS == 137 ]] && fail "timed out after ${tmo}s (killed by timeout)"
    return 0
}

# vm_linux [--vmm vireo|qemu] [--image DIR] [--cpus N] [--mem SIZE]
#          [--append ARGS] [--timeout S] [--show] [-- VMM-ARGS...]
# Boots the stock kernel + initramfs of IMAGE (default: this job's image)
# with "console=ttyS0 quiet" plus ARGS; VMM-ARGS go to the VMM as they are.
vm_linux() {
    local vmm=$VMM image=$IMAGE cpus=1 mem=256M append='' tmo=$L2_TIMEOUT show=''
    while (($#)); do
        case $1 in
        --) shift; break ;;
        --vmm) vmm=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --timeout) tmo=$2; shift 2 ;;
        --show) show=1; shift ;;
        *) echo "vm_linux: unknown option $1" >&2; return 2 ;;
        esac
    done
    local initrd
    initrd=$(ls "$image"/initramfs.cpio* 2>/dev/null | head -1)
    local cmdline="console=ttyS0 quiet${append:+ $append}"
    VM_VMM=$vmm
    case $vmm in
    vireo)
        local try
        for try in 1 2; do
            run_vmm "$tmo" "$show" -- "$BUILD/vireo" run --kernel "$image/vmlinuz" --initrd "$initrd" \
                --cmdline "$cmdline" --cpus "$cpus" --mem "$mem" "$@"
            # Under QEMU's TCG emulation of nested SVM a stock L2 kernel
            # sometimes triple-faults before it prints anything (about 1 boot
            # in 200; KVM resets the vCPU on shutdown, so no registers are
            # left to read). That boot runs once more, counted by the host;
            # a kernel or vireo bug fails both times and is reported.
            ((try == 1 && STATUS == 4)) && ! grep -q . "$CONSOLE" &&
                grep -q 'triple fault (KVM_EXIT_SHUTDOWN)' "$LOG" || break
            vh "INFO L2 early triple fault: $JOB boot $RUN_NO ($(grep -o 'rip=[^ ]*' "$LOG" | head -1)), booted once more"
        done
        ;;
    qemu)
        # QEMU microvm in its fastest configuration (the baseline boot_to_init_ms is measured against).
        run_vmm "$tmo" "$show" -- qemu-system-x86_64 -accel kvm -cpu host -M microvm,rtc=on \
            -nodefaults -no-user-config -display none -serial stdio -no-reboot \
            -smp "$cpus" -m "$mem" -kernel "$image/vmlinuz" -initrd "$initrd" -append "$cmdline" "$@"
        ;;
    *) echo "vm_linux: unknown VMM $vmm" >&2; return 2 ;;
    esac
}

# vm_testguest WORKLOAD[:ARG] [--cpus N] [--mem SIZE] [--timeout S]
#              [--append ARGS] [-- VIREO-ARGS...]
# Boots build/testguest (ring-3 protocol) with "workload=WORKLOAD ARGS".
vm_testguest() {
    local workload=$1 cpus=1 mem=64M tmo=$L2_TIMEOUT append=''
    shift
    while (($#)); do
        case $1 in
        --) shift; break ;;
        --cpus) cpus=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --timeout) tmo=$2; shift 2 ;;
        *) echo "vm_testguest: unknown option $1" >&2; return 2 ;;
        esac
    done
    VM_VMM=vireo
    [[ -f $BUILD/testguest ]] || { fail "$BUILD/testguest not built"; return 0; }
    run_vmm "$tmo" "" -- "$BUILD/vireo" run --kernel "$BUILD/testguest" \
        --cmdline "workload=$workload${append:+ $append}" --cpus "$cpus" --mem "$mem" "$@"
}

needs_vireo() {
    [[ $VMM == vireo ]] || skip "needs vireo (running with VMM=$VMM)"
    [[ -x $BUILD/vireo ]] || { fail "$BUILD/vireo not built"; exit 0; }
}

# ---------------------------------------------------------------- checks
expect_status() {
    [[ $STATUS == "$1" ]] || fail "exit status $STATUS, expected $1${2:+ ($2)}"
}
expect_console() {
    grep -aqE -- "$1" "$CONSOLE" || fail "console never showed /$1/"
}
expect_no_console() {
    ! grep -aqE -- "$1" "$CONSOLE" || fail "console showed /$1/: $(grep -aE -m1 -- "$1" "$CONSOLE")"
}
# The VMM's log; only meaningful for vireo (other VMMs log differently).
expect_log() {
    [[ $VM_VMM != vireo ]] && return 0
    grep -aqiE -- "$1" "$LOG" || fail "vireo's log never showed /$1/"
}
# expect_console_value KEY: prints the value of the first "KEY=VALUE" console line.
console_value() {
    grep -aoE -m1 -- "$1=[^[:space:]]*" "$CONSOLE" | head -1 | cut -d= -f2-
}
