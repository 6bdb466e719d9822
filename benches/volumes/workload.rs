//! The workload, as a busybox shell script (guest and host directory) and as an `smbclient`
//! command list (the SMB reference), each printing a start and an end marker per phase.

use std::path::Path;

/// The phases, in order: sequential write, sequential read, small-file creation.
pub const PHASES: [&str; 3] = ["write", "read", "create"];

/// A line starting with this ends the wait for markers early (a failed mount).
pub const FAILED: &str = "bench-failed";

/// The workload on directory `$D`, with a marker line before and after each phase. Between
/// the write and the read, a guest (`$DROP_CACHES` set) drops its page cache, so the read
/// goes to the share's server; the host directories are on tmpfs, where there is nothing to
/// drop.
pub fn script(mib: usize, files: usize) -> String {
    format!(
        "B=/bin/busybox\n\
         echo bench-write-start\n$B dd if=/dev/zero of=$D/big bs=1M count={mib} conv=fsync 2>/dev/null\n\
         echo bench-write-end\n\
         $B sync\n[ -n \"$DROP_CACHES\" ] && echo 3 > /proc/sys/vm/drop_caches\n\
         echo bench-read-start\n$B dd if=$D/big of=/dev/null bs=1M 2>/dev/null\necho bench-read-end\n\
         echo bench-create-start\n$B mkdir $D/small\ni=0\n\
         while [ $i -lt {files} ]; do echo x > $D/small/f$i; i=$((i+1)); done\n\
         echo bench-create-end\n\
         echo bench-files=$($B ls $D/small | $B wc -l) bytes=$($B wc -c < $D/big)\n\
         $B rm -rf $D/big $D/small\n"
    )
}

/// The same phases as `smbclient` commands (read from its standard input, where `!` runs
/// a local shell command: the markers): `put` of the local file `big`, `get` of it to
/// `/dev/null`, and `mput` of every file of the local directory `small` into a new
/// directory `small` on the share. Paths are relative to `local`.
pub fn smbclient_commands(local: &Path) -> String {
    let local = local.display();
    format!(
        "lcd {local}\n\
         !echo bench-write-start\nput big big\n!echo bench-write-end\n\
         !echo bench-read-start\nget big /dev/null\n!echo bench-read-end\n\
         mkdir small\ncd small\nlcd small\nprompt off\n\
         !echo bench-create-start\nmput f*\n!echo bench-create-end\n"
    )
}
