//! Thin wrappers over the system calls the sandbox makes: mount(2), umount2(2), and the
//! mount table lookup that tells whether a path is already a mount point.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a mount argument"))
}

/// mount(2). `data` may hold a secret (a CIFS password): the copy made for the call is
/// overwritten before returning, and `data` never appears in the returned error.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &[u8],
) -> io::Result<()> {
    let src = cstring(source.as_bytes())?;
    let tgt = cstring(target.as_os_str().as_bytes())?;
    let fs = fstype.map(|f| cstring(f.as_bytes())).transpose()?;
    if data.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the mount options"));
    }
    let mut dat = Vec::with_capacity(data.len() + 1);
    dat.extend_from_slice(data);
    dat.push(0);
    let fs_ptr = fs.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string (or null for the filesystem type
    // of a remount) that outlives the call.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs_ptr, flags, dat.as_ptr().cast()) };
    let result = if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    dat.fill(0);
    std::hint::black_box(&dat);
    result
}

/// umount2(2) with `flags` (0 or `MNT_DETACH`).
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let tgt = cstring(target.as_os_str().as_bytes())?;
    // SAFETY: `tgt` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(tgt.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Flushes every filesystem's dirty data.
pub fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Whether `path` is the mount point of a mount in `mountinfo` (the text of
/// `/proc/self/mountinfo`).
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    let wanted = path.as_os_str().as_bytes();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|field| unescape_octal(field).as_slice() == wanted)
}

/// Undoes the `\ooo` escapes the kernel uses for spaces and other bytes in mountinfo.
fn unescape_octal(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b));
        if bytes[i] == b'\\' && octal {
            let digit = |k: usize| u32::from(bytes[i + k] - b'0');
            out.push((digit(1) * 64 + digit(2) * 8 + digit(3)) as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_found_with_escapes_undone() {
        let info = "22 1 0:21 / / rw - rootfs rootfs rw\n\
                    30 22 254:0 / /run/aci/my\\040disk ro - erofs /dev/vda ro\n";
        assert!(is_mount_point(info, Path::new("/")));
        assert!(is_mount_point(info, Path::new("/run/aci/my disk")));
        assert!(!is_mount_point(info, Path::new("/run/aci")));
        assert!(!is_mount_point(info, Path::new("/run/aci/my\\040disk")));
    }
}
