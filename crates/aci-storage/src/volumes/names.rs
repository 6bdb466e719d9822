//! Checks and derivations of names that become paths, tags or log text.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};

/// Longest virtio-fs tag the device accepts.
const MAX_TAG_LEN: usize = 36;

/// Whether `name` is exactly one normal path component: not empty, `.` or `..`, and without
/// `/` or NUL.
pub(crate) fn is_single_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// `dir` as a path relative to a volume's root: `.`/empty components dropped; absolute paths
/// and `..` refused (the reason is returned).
pub(crate) fn relative_dir(dir: &str) -> Result<PathBuf, &'static str> {
    if dir.contains('\0') {
        return Err("it contains NUL");
    }
    let mut out = PathBuf::new();
    for component in Path::new(dir).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it has a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("it is absolute"),
        }
    }
    Ok(out)
}

/// `url` with any `user:password@` removed, fit for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some(info) => url.replacen(&format!("{info}@"), "", 1),
        None => url.to_owned(),
    }
}

/// `text` with the credentials of `url` (its `user:password` part) replaced.
pub(crate) fn redact_text(text: &str, url: &str) -> String {
    match userinfo(url) {
        Some(info) if !info.is_empty() => text.replace(info, "<redacted>"),
        _ => text.to_owned(),
    }
}

/// The `user[:password]` of a `scheme://user[:password]@host/…` URL.
fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (info, _) = authority.rsplit_once('@')?;
    Some(info)
}

/// The directory `git clone` would pick for `url`: its last path segment without `.git`.
pub(crate) fn repository_dir_name(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    is_single_component(name).then(|| name.to_owned())
}

/// The virtio-fs tag of a volume: `aci-<name>`, or for long names a prefix and a hash so
/// the tag fits the device's 36 bytes and stays unique.
pub(crate) fn virtiofs_tag(volume: &str) -> String {
    let tag = format!("aci-{volume}");
    if tag.len() <= MAX_TAG_LEN {
        return tag;
    }
    let mut hasher = DefaultHasher::new();
    volume.hash(&mut hasher);
    let prefix: String = volume.chars().take(15).collect();
    let tag = format!("aci-{prefix}-{:016x}", hasher.finish());
    // A multi-byte prefix could still overflow; fall back to the hash alone.
    if tag.len() <= MAX_TAG_LEN {
        tag
    } else {
        format!("aci-{:016x}", hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert!(is_single_component("a.txt"));
        for bad in ["", ".", "..", "a/b", "/", "a\0"] {
            assert!(!is_single_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn relative_dirs() {
        assert_eq!(relative_dir("."), Ok(PathBuf::new()));
        assert_eq!(relative_dir("./a/b/"), Ok(PathBuf::from("a/b")));
        assert!(relative_dir("/etc").is_err());
        assert!(relative_dir("a/../b").is_err());
        assert!(relative_dir("..").is_err());
    }

    #[test]
    fn urls() {
        let url = "https://me:pw@example.com/org/repo.git";
        assert_eq!(redact_url(url), "https://example.com/org/repo.git");
        assert_eq!(redact_text("fatal: me:pw failed", url), "fatal: <redacted> failed");
        assert_eq!(repository_dir_name(url).as_deref(), Some("repo"));
        assert_eq!(repository_dir_name("git@host:repo").as_deref(), Some("repo"));
        assert_eq!(repository_dir_name("git://127.0.0.1:9/x/").as_deref(), Some("x"));
        assert_eq!(repository_dir_name("https://host/.."), None);
    }

    #[test]
    fn tags_fit() {
        assert_eq!(virtiofs_tag("data"), "aci-data");
        let long = virtiofs_tag(&"x".repeat(100));
        assert!(long.len() <= MAX_TAG_LEN);
        assert_ne!(long, virtiofs_tag(&"x".repeat(101)));
        assert!(virtiofs_tag(&"é".repeat(40)).len() <= MAX_TAG_LEN);
    }
}
