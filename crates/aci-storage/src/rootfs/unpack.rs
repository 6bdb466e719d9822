//! Applying one layer tar to a directory: entries, OCI whiteouts, hostile-entry containment.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::layer::LayerSource;
use super::policy::{DevicePolicy, SetuidPolicy, UnpackPolicy, UnpackWarning, WarningKind};
use super::root_dir::{self as fsat, Existing, Meta, RootDir};
use super::RootfsError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Applies the layers, in order, to the directory `target` (which must exist).
pub fn unpack_layers(
    layers: &[LayerSource],
    target: &Path,
    policy: &UnpackPolicy,
) -> Result<Vec<UnpackWarning>, RootfsError> {
    let root = RootDir::open(target)
        .map_err(|source| RootfsError::OpenTarget { path: target.to_path_buf(), source })?;
    let mut warnings = Vec::new();
    for layer in layers {
        LayerApplier {
            root: &root,
            layer,
            policy,
            warnings: &mut warnings,
            created: HashSet::new(),
            ownership_warned: false,
        }
        .apply()?;
    }
    Ok(warnings)
}

/// Turns an entry path into a relative path with only normal components.
/// Returns `None` for a `..` component, and whether the path was absolute.
fn normalize(raw: &Path) -> Option<(PathBuf, bool)> {
    let mut out = PathBuf::new();
    let mut absolute = false;
    for comp in raw.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => absolute = true,
            Component::ParentDir => return None,
        }
    }
    Some((out, absolute))
}

struct LayerApplier<'a> {
    root: &'a RootDir,
    layer: &'a LayerSource,
    policy: &'a UnpackPolicy,
    warnings: &'a mut Vec<UnpackWarning>,
    /// Paths (and their ancestors) this layer has written, kept by an opaque whiteout.
    created: HashSet<PathBuf>,
    /// Whether this layer already recorded [`WarningKind::OwnershipNotSet`].
    ownership_warned: bool,
}

impl LayerApplier<'_> {
    fn read_err(&self, source: io::Error) -> RootfsError {
        RootfsError::ReadLayer { layer: self.layer.name.clone(), source }
    }

    fn warn(&mut self, path: &str, kind: WarningKind) {
        self.warnings.push(UnpackWarning { layer: self.layer.name.clone(), path: path.into(), kind });
    }

    fn apply(mut self) -> Result<(), RootfsError> {
        let reader = self.layer.open_tar().map_err(|source| RootfsError::OpenLayer {
            layer: self.layer.name.clone(),
            path: self.layer.path.clone(),
            source,
        })?;
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| self.read_err(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_err(e))?;
            let raw = entry.path().map_err(|e| self.read_err(e))?.into_owned();
            let shown = raw.display().to_string();
            let Some((rel, absolute)) = normalize(&raw) else {
                self.warn(&shown, WarningKind::ParentComponent);
                continue;
            };
            if absolute {
                self.warn(&shown, WarningKind::AbsolutePath);
            }
            let (Some(name), Some(parent_rel)) = (rel.file_name(), rel.parent()) else {
                continue; // the root itself
            };
            let name = name.to_os_string();
            let result = if name == OPAQUE_MARKER {
                self.opaque(parent_rel)
            } else if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                self.whiteout(parent_rel, OsStr::from_bytes(hidden), &shown)
            } else {
                self.entry(&mut entry, &rel, parent_rel, &name, &shown)
            };
            result.map_err(|e| match e {
                EntryError::Io(source) => {
                    RootfsError::WriteEntry { layer: self.layer.name.clone(), path: shown.clone(), source }
                }
                EntryError::Rejected(reason) => {
                    RootfsError::Rejected { layer: self.layer.name.clone(), path: shown.clone(), reason }
                }
            })?;
        }
        Ok(())
    }

    fn mark_created(&mut self, rel: &Path) {
        for a in rel.ancestors() {
            if !self.created.insert(a.to_path_buf()) {
                break;
            }
        }
    }

    /// `.wh..wh..opq`: hide everything lower layers put in the directory.
    fn opaque(&mut self, dir_rel: &Path) -> Result<(), EntryError> {
        let dir = match self.root.open_dir(dir_rel) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let real = self.root.real_path(&dir)?;
        for child in std::fs::read_dir(&real)? {
            let child = child?;
            if !self.created.contains(&dir_rel.join(child.file_name())) {
                remove_any(self.root, &dir, &child.file_name())?;
            }
        }
        Ok(())
    }

    /// `.wh.NAME`: delete NAME from lower layers.
    fn whiteout(&mut self, dir_rel: &Path, hidden: &OsStr, shown: &str) -> Result<(), EntryError> {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            self.warn(shown, WarningKind::ParentComponent);
            return Ok(());
        }
        match self.root.open_dir(dir_rel) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
            Ok(dir) => remove_any(self.root, &dir, hidden),
        }
    }

    fn entry<R: io::Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        parent_rel: &Path,
        name: &OsStr,
        shown: &str,
    ) -> Result<(), EntryError> {
        let header = entry.header();
        let kind = header.entry_type();
        let mut mode = header.mode().map_err(EntryError::Io)?;
        let meta_uid = header.uid().ok().and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
        let meta_gid = header.gid().ok().and_then(|g| u32::try_from(g).ok()).unwrap_or(0);
        let mtime = header.mtime().ok().and_then(|t| i64::try_from(t).ok()).unwrap_or(0);
        if mode & 0o6000 != 0 && !kind.is_symlink() {
            match self.policy.setuid {
                SetuidPolicy::Keep => {}
                SetuidPolicy::Strip => {
                    mode &= !0o6000;
                    self.warn(shown, WarningKind::SetuidStripped);
                }
                SetuidPolicy::Reject => return Err(EntryError::Rejected("setuid/setgid bit set".into())),
            }
        }
        let meta = Meta { uid: meta_uid, gid: meta_gid, mode, mtime };
        let parent = self.root.ensure_dir(parent_rel)?;
        match kind {
            EntryType::Directory => {
                match fsat::existing(&parent, name)? {
                    Existing::Dir => {}
                    Existing::Other => {
                        fsat::unlink_at(&parent, name)?;
                        fsat::mkdir_at(&parent, name, 0o700)?;
                    }
                    Existing::Nothing => fsat::mkdir_at(&parent, name, 0o700)?,
                }
                self.set_meta(&parent, name, meta, false, shown)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let xattrs = pax_xattrs(entry);
                remove_any(self.root, &parent, name)?;
                let mut file = fsat::create_file_at(&parent, name)?;
                io::copy(entry, &mut file)?;
                for (k, v) in xattrs {
                    if let Err(e) = fsat::set_xattr(&file, &k, &v) {
                        let key = String::from_utf8_lossy(&k).into_owned();
                        self.warn(shown, WarningKind::XattrNotSet(format!("{key}: {e}")));
                    }
                }
                drop(file);
                self.set_meta(&parent, name, meta, false, shown)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name().map_err(EntryError::Io)?.unwrap_or_default();
                remove_any(self.root, &parent, name)?;
                fsat::symlink_at(&parent, name, target.as_os_str())?;
                self.set_meta(&parent, name, meta, true, shown)?;
            }
            EntryType::Link => {
                let target = entry.link_name().map_err(EntryError::Io)?.unwrap_or_default();
                if !self.hardlink(&parent, name, &target)? {
                    self.warn(shown, WarningKind::BadHardlink(target.display().to_string()));
                    return Ok(());
                }
            }
            EntryType::Fifo => {
                remove_any(self.root, &parent, name)?;
                fsat::mknod_at(&parent, name, libc::S_IFIFO, mode, 0, 0)?;
                self.set_meta(&parent, name, meta, false, shown)?;
            }
            EntryType::Char | EntryType::Block => match self.policy.devices {
                DevicePolicy::Skip => {
                    self.warn(shown, WarningKind::DeviceSkipped);
                    return Ok(());
                }
                DevicePolicy::Reject => return Err(EntryError::Rejected("device node".into())),
            },
            EntryType::XGlobalHeader | EntryType::XHeader => return Ok(()),
            other => {
                self.warn(shown, WarningKind::UnsupportedType(format!("{other:?}")));
                return Ok(());
            }
        }
        self.mark_created(rel);
        Ok(())
    }

    /// Links `parent/name` to `target` (resolved inside the root). `Ok(false)`: no such file.
    fn hardlink(&mut self, parent: &OwnedFd, name: &OsStr, target: &Path) -> Result<bool, EntryError> {
        let Some((target_rel, _)) = normalize(target) else {
            return Ok(false);
        };
        let (Some(tname), Some(tparent_rel)) = (target_rel.file_name(), target_rel.parent()) else {
            return Ok(false);
        };
        let tparent = match self.root.open_dir(tparent_rel) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if fsat::existing(&tparent, tname)? != Existing::Other {
            return Ok(false);
        }
        remove_any(self.root, parent, name)?;
        fsat::link_at(&tparent, tname, parent, name)?;
        Ok(true)
    }

    fn set_meta(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: Meta,
        symlink: bool,
        shown: &str,
    ) -> Result<(), EntryError> {
        if !fsat::set_meta_at(parent, name, meta, symlink)? && !self.ownership_warned {
            // Once per layer: without root every entry would say the same.
            self.ownership_warned = true;
            self.warn(shown, WarningKind::OwnershipNotSet);
        }
        Ok(())
    }
}

/// Removes whatever is at `parent/name` (a directory tree or anything else); absent is fine.
fn remove_any(root: &RootDir, parent: &OwnedFd, name: &OsStr) -> Result<(), EntryError> {
    match fsat::existing(parent, name)? {
        Existing::Nothing => {}
        Existing::Other => fsat::unlink_at(parent, name)?,
        // remove_dir_all never follows symlinks; the parent's path was checked to be in root.
        Existing::Dir => std::fs::remove_dir_all(root.real_path(parent)?.join(name))?,
    }
    Ok(())
}

/// `SCHILY.xattr.*` records of the entry's PAX header.
fn pax_xattrs<R: io::Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((key.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    out
}

/// Why one entry failed.
enum EntryError {
    Io(io::Error),
    Rejected(String),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
