//! [`StableDirs`] over the real passthrough filesystem on a temporary directory, driven as
//! the guest driver does: 4 KiB replies, continuing at the last entry's offset.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::Path;

use fuse_backend_rs::api::filesystem::ROOT_ID;
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};

use super::*;

/// The guest's reply buffer (one page).
const PAGE: usize = 4096;

fn fs(dir: &Path) -> StableDirs<PassthroughFs> {
    let config = Config {
        root_dir: dir.to_str().unwrap().to_owned(),
        do_import: true,
        cache_policy: CachePolicy::Auto,
        xattr: false,
        ..Config::default()
    };
    let inner = PassthroughFs::<()>::new(config).unwrap();
    inner.import().unwrap();
    let fs = StableDirs::new(inner);
    fs.init(FsOptions::empty()).unwrap();
    fs
}

/// Names of varying length, so replies hold different numbers of entries.
fn name(i: usize) -> String {
    format!("entry-{i}-{}", "n".repeat(i % 37))
}

/// One `READDIRPLUS` reply's worth from `offset`: (name, offset) pairs; the lookups are
/// handed back (`forget`) as the guest would eventually.
fn readdirplus_page(
    fs: &StableDirs<PassthroughFs>,
    dir: u64,
    handle: u64,
    offset: u64,
) -> Vec<(String, u64)> {
    let ctx = Context::default();
    let mut used = 0;
    let mut page = Vec::new();
    let mut looked_up = Vec::new();
    fs.readdirplus(&ctx, dir, handle, PAGE as u32, offset, &mut |d, e| {
        // fuse_entry_out + fuse_dirent + name, padded to 8 bytes.
        let len = 128 + (24 + d.name.len()).next_multiple_of(8);
        if used + len > PAGE {
            return Ok(0);
        }
        used += len;
        page.push((String::from_utf8(d.name.to_vec()).unwrap(), d.offset));
        looked_up.push(e.inode);
        Ok(len)
    })
    .unwrap();
    fs.batch_forget(&ctx, looked_up.into_iter().map(|i| (i, 1)).collect());
    page
}

fn readdir_all(fs: &StableDirs<PassthroughFs>, dir: u64, handle: u64, offset: u64) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    fs.readdir(&Context::default(), dir, handle, PAGE as u32, offset, &mut |d| {
        all.push((String::from_utf8(d.name.to_vec()).unwrap(), d.offset));
        Ok(1)
    })
    .unwrap();
    all
}

#[test]
fn removing_entries_while_reading_returns_every_entry_once_and_empties_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let expected: BTreeSet<String> = (0..1500).map(name).collect();
    for n in &expected {
        std::fs::write(dir.path().join(n), b"").unwrap();
    }
    let fs = fs(dir.path());
    let ctx = Context::default();
    let (handle, _) = fs.opendir(&ctx, ROOT_ID, libc::O_RDONLY as u32).unwrap();
    let handle = handle.unwrap();
    let (mut seen, mut offset, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page = readdirplus_page(&fs, ROOT_ID, handle, offset);
        let Some(last) = page.last() else { break };
        offset = last.1;
        pages += 1;
        // What `rm -rf` does: remove what was read, then read on.
        for (n, _) in &page {
            fs.unlink(&ctx, ROOT_ID, &CString::new(n.as_str()).unwrap()).unwrap();
        }
        seen.extend(page.into_iter().map(|(n, _)| n));
    }
    assert!(pages > 30, "4 KiB replies hold a few dozen entries: {pages} pages");
    assert_eq!(seen.len(), expected.len(), "every entry exactly once");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(fs.listing_bytes() > 0);
    fs.releasedir(&ctx, ROOT_ID, 0, handle).unwrap();
    assert_eq!(fs.listing_bytes(), 0, "released with the handle");
}

#[test]
fn offsets_are_positions_and_a_rewind_lists_the_directory_anew() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["a", "b", "c"] {
        std::fs::write(dir.path().join(n), b"").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let fs = fs(dir.path());
    let ctx = Context::default();
    let handle = fs.opendir(&ctx, ROOT_ID, libc::O_RDONLY as u32).unwrap().0.unwrap();
    let first = readdir_all(&fs, ROOT_ID, handle, 0);
    assert_eq!(first.iter().map(|(_, o)| *o).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let names: BTreeSet<_> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["a", "b", "c", "sub"]));
    // Continuing after position 2 gives the rest of the same listing, whatever changed.
    let third = dir.path().join(&first[2].0);
    if third.is_dir() { std::fs::remove_dir(&third) } else { std::fs::remove_file(&third) }.unwrap();
    std::fs::write(dir.path().join("d"), b"").unwrap();
    assert_eq!(readdir_all(&fs, ROOT_ID, handle, 2), first[2..].to_vec());
    assert_eq!(readdir_all(&fs, ROOT_ID, handle, 4), []);
    assert_eq!(readdir_all(&fs, ROOT_ID, handle, u64::MAX), []);
    // A rewind sees the directory as it is now.
    let again: BTreeSet<_> = readdir_all(&fs, ROOT_ID, handle, 0).into_iter().map(|(n, _)| n).collect();
    let mut now: BTreeSet<String> = ["a", "b", "c", "d", "sub"].map(String::from).into();
    now.remove(&first[2].0);
    assert_eq!(again, now);
    fs.releasedir(&ctx, ROOT_ID, 0, handle).unwrap();
}

#[test]
fn readdirplus_skips_entries_removed_since_the_listing_and_reports_types_and_inodes() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["f1", "f2", "f3"] {
        std::fs::write(dir.path().join(n), b"x").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let fs = fs(dir.path());
    let ctx = Context::default();
    let handle = fs.opendir(&ctx, ROOT_ID, libc::O_RDONLY as u32).unwrap().0.unwrap();
    // The listing is read at offset 0; the guest takes one entry.
    let mut first = None;
    fs.readdir(&ctx, ROOT_ID, handle, PAGE as u32, 0, &mut |d| {
        if first.is_some() {
            return Ok(0);
        }
        first = Some(String::from_utf8(d.name.to_vec()).unwrap());
        Ok(1)
    })
    .unwrap();
    let first = first.unwrap();
    // A file not sent yet goes on the host before the next read.
    let victim = ["f1", "f2", "f3"].into_iter().find(|n| *n != first).unwrap();
    std::fs::remove_file(dir.path().join(victim)).unwrap();
    let mut rest = Vec::new();
    let mut looked_up = Vec::new();
    fs.readdirplus(&ctx, ROOT_ID, handle, PAGE as u32, 1, &mut |d, e| {
        rest.push((String::from_utf8(d.name.to_vec()).unwrap(), d.type_, d.ino, d.offset));
        looked_up.push((e.inode, 1));
        Ok(1)
    })
    .unwrap();
    fs.batch_forget(&ctx, looked_up);
    let expected: BTreeSet<_> =
        ["f1", "f2", "f3", "sub"].into_iter().filter(|n| *n != first && *n != victim).collect();
    assert_eq!(rest.iter().map(|r| r.0.as_str()).collect::<BTreeSet<_>>(), expected, "{rest:?}");
    for (n, type_, ino, offset) in &rest {
        let meta = std::fs::metadata(dir.path().join(n)).unwrap();
        let dt = if meta.is_dir() { libc::DT_DIR } else { libc::DT_REG };
        assert_eq!((*type_, *ino), (u32::from(dt), std::os::unix::fs::MetadataExt::ino(&meta)), "{n}");
        assert!((2..=4).contains(offset), "{n}: offset {offset}");
    }
    fs.releasedir(&ctx, ROOT_ID, 0, handle).unwrap();
}
