#!/bin/bash
# tests/bench/boot_to_init.sh [BUILD_DIR] — boot-to-init time, vireo vs QEMU
# microvm, measured side by side inside one QEMU L1 guest (the harness of
# tests/qemu; its L1 side is tests/qemu/bench/boot_to_init.sh).
# stdout: JSON result lines ({"name":"boot_to_init_ms",...}); progress on
# stderr. Exit 0 also when skipped (no QEMU: the reason is on stderr and
# there is no JSON). ROUNDS (default 5) boots per VMM.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
exec "$REPO/tests/qemu/run-harness" --build "${1:-${VIREO_BUILD:-${BUILD:-$REPO/build}}}" --bench boot_to_init --rounds "${ROUNDS:-5}"
