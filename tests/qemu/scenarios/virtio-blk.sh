# virtio-blk: the stock Debian guest finds vireo's virtio-mmio disks through
# ACPI (LNRO0005) as /dev/vda and /dev/vdb; 4 MiB written with dd, synced,
# dropped from the page cache and read back have the same checksum, and after
# vireo exits the image (here in L1) holds exactly those bytes. The second
# disk is read-only: the guest sees it so and it stays unchanged.
guest_script() {
    cat <<'SCRIPT'
#!/bin/sh
echo "guest: vda_sectors=$(cat /sys/block/vda/size 2>/dev/null || echo none) vdb_ro=$(cat /sys/block/vdb/ro 2>/dev/null || echo none)"
echo "guest: vda_serial=$(cat /sys/block/vda/serial 2>/dev/null || echo none)"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
echo "guest: wrote_md5=$(md5sum /tmp/pattern | cut -d' ' -f1)"
dd if=/tmp/pattern of=/dev/vda bs=1M seek=1 count=4 conv=fsync 2>/dev/null || echo "guest: write to vda failed"
sync
echo 3 >/proc/sys/vm/drop_caches
echo "guest: read_md5=$(dd if=/dev/vda bs=1M skip=1 count=4 2>/dev/null | md5sum | cut -d' ' -f1)"
if dd if=/tmp/pattern of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then
    echo "guest: vdb_write=accepted"
else
    echo "guest: vdb_write=refused"
fi
SCRIPT
}

run() {
    needs_vireo
    local disk=$JOB_DIR/disk.img ro=$JOB_DIR/ro.img
    dd if=/dev/zero of="$disk" bs=1M count=16 2>/dev/null
    dd if=/dev/urandom of="$ro" bs=1M count=1 2>/dev/null
    local ro_before
    ro_before=$(md5sum <"$ro" | cut -d' ' -f1)
    vm_linux --mem 256M -- --disk "$disk" --disk "$ro,ro" --stats
    expect_status 0 "guest powered off"
    expect_console 'vireo-init: boot complete'
    local sectors wrote read vdb_ro vdb_write host
    sectors=$(console_value vda_sectors) vdb_ro=$(console_value vdb_ro)
    wrote=$(console_value wrote_md5) read=$(console_value read_md5) vdb_write=$(console_value vdb_write)
    [[ $sectors == 32768 ]] || fail "guest sees /dev/vda with ${sectors:-?} sectors, expected 32768 (16 MiB)"
    [[ -n $wrote && $wrote == "$read" ]] || fail "guest read back md5 ${read:-?}, wrote ${wrote:-?}"
    host=$(dd if="$disk" bs=1M skip=1 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
    [[ $host == "$wrote" ]] || fail "after exit the image holds md5 $host at 1-5 MiB, the guest wrote ${wrote:-?}"
    [[ $vdb_ro == 1 ]] || fail "guest sees /dev/vdb ro=${vdb_ro:-?}, expected 1"
    [[ $vdb_write == refused ]] || fail "a write to the read-only /dev/vdb was ${vdb_write:-?}"
    [[ $(md5sum <"$ro" | cut -d' ' -f1) == "$ro_before" ]] || fail "the read-only image changed"
    expect_log 'virtio-blk0 .*writes [1-9]'
    expect_log 'host I/O errors 0'
}
