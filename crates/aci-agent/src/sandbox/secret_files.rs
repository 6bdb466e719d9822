//! Files of a secret volume: paths checked, contents decoded, written into a fresh tmpfs.
//! The contents are never printed; errors name the file, not what is in it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use aci_proto::sandbox::SecretFile;
use base64::Engine as _;

/// The mode of a file whose mode is not given.
pub const DEFAULT_MODE: u32 = 0o444;

/// Errors of a secret volume's files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path is empty, absolute, or leaves the volume.
    #[error("file path {path:?} is invalid: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Two files have the same path.
    #[error("file path {0:?} is given twice")]
    Duplicate(String),
    /// The contents are not base64.
    #[error("the contents of file {0:?} are not valid base64")]
    Base64(String),
    /// The mode has bits beyond the permission bits.
    #[error("file {path:?} has mode {mode:#o}, which is not a permission mode (at most 0o777)")]
    Mode {
        /// The path.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// Writing the file failed.
    #[error("cannot write file {path:?}")]
    Write {
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A file checked and decoded, ready to write.
pub struct DecodedFile {
    /// The path relative to the volume, made only of normal components.
    pub path: PathBuf,
    /// The decoded bytes.
    contents: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

impl std::fmt::Debug for DecodedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedFile")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for DecodedFile {
    fn drop(&mut self) {
        self.contents.fill(0);
        std::hint::black_box(&self.contents);
    }
}

/// Checks a relative path: not empty, not absolute, no `..`, `.` or empty components.
pub fn validate_path(path: &str) -> Result<PathBuf, FileError> {
    let bad = |reason| Err(FileError::Path { path: path.to_owned(), reason });
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.starts_with('/') {
        return bad("it is absolute");
    }
    if path.contains('\0') {
        return bad("it contains a NUL byte");
    }
    if path.split('/').any(|part| part == "..") {
        return bad("it contains `..`");
    }
    if path.split('/').any(|part| part.is_empty() || part == ".") {
        return bad("it has an empty or `.` component");
    }
    let checked = PathBuf::from(path);
    if !checked.components().all(|c| matches!(c, Component::Normal(_))) {
        return bad("it is not a plain relative path");
    }
    Ok(checked)
}

/// Checks every path and mode and decodes every file, before anything is mounted.
pub fn decode(files: &[SecretFile]) -> Result<Vec<DecodedFile>, FileError> {
    let mut decoded: Vec<DecodedFile> = Vec::with_capacity(files.len());
    for file in files {
        let path = validate_path(&file.path)?;
        if decoded.iter().any(|d| d.path == path) {
            return Err(FileError::Duplicate(file.path.clone()));
        }
        let mode = file.mode.unwrap_or(DEFAULT_MODE);
        if mode & !0o777 != 0 {
            return Err(FileError::Mode { path: file.path.clone(), mode });
        }
        let contents = base64::engine::general_purpose::STANDARD
            .decode(file.contents_base64.expose().trim())
            .map_err(|_| FileError::Base64(file.path.clone()))?;
        decoded.push(DecodedFile { path, contents, mode });
    }
    Ok(decoded)
}

/// Writes the files under `root` (parent directories 0755, created as needed).
pub fn write_all(root: &Path, files: &[DecodedFile]) -> Result<(), FileError> {
    for file in files {
        let shown = file.path.display().to_string();
        let err = |source| FileError::Write { path: shown.clone(), source };
        let target = root.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent).map_err(err)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&target)
            .map_err(err)?;
        out.write_all(&file.contents).map_err(err)?;
        // The umask may have cleared bits of the mode asked for.
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(file.mode))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::secret::Secret;
    use std::os::unix::fs::PermissionsExt;

    fn file(path: &str, b64: &str, mode: Option<u32>) -> SecretFile {
        SecretFile { path: path.into(), contents_base64: Secret::new(b64), mode }
    }

    #[test]
    fn paths_must_stay_inside_the_volume() {
        assert_eq!(validate_path("token").unwrap(), Path::new("token"));
        assert_eq!(validate_path("tls/cert.pem").unwrap(), Path::new("tls/cert.pem"));
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../escape", "`..`"),
            ("a/../../b", "`..`"),
            ("a//b", "empty or `.`"),
            ("./a", "empty or `.`"),
            ("a/", "empty or `.`"),
            ("a\0b", "NUL"),
        ] {
            let err = validate_path(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")) && err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn decoding_names_the_file_but_never_the_contents() {
        let err = decode(&[file("key", "c2VjcmV0!!!", None)]).unwrap_err().to_string();
        assert!(err.contains("\"key\"") && !err.contains("c2VjcmV0"), "{err}");
        let err = decode(&[file("a", "", None), file("a", "", None)]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        let err = decode(&[file("a", "", Some(0o4755))]).unwrap_err().to_string();
        assert!(err.contains("0o4755"), "{err}");
        let files = decode(&[file("k", "c2VjcmV0", None)]).unwrap();
        assert!(!format!("{files:?}").contains("secret"));
    }

    #[test]
    fn files_are_written_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let files = decode(&[file("tls/key", "c2VjcmV0", Some(0o400)), file("plain", "aGk=", None)]).unwrap();
        write_all(dir.path(), &files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("tls/key")).unwrap(), b"secret");
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("tls/key"), 0o400);
        assert_eq!(mode("plain"), 0o444);
        assert_eq!(mode("tls"), 0o755);
    }
}
