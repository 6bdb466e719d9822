//! Image references: `[registry/]name[:tag][@digest]` with Docker's defaulting rules.

use std::fmt;
use std::str::FromStr;

/// The registry a reference without a host names.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

/// Errors of parsing an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("empty image reference")]
    Empty,
    /// The repository name has characters or a shape the distribution spec forbids.
    #[error("invalid repository name in image reference {reference:?}")]
    InvalidName {
        /// The reference as given.
        reference: String,
    },
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag in image reference {reference:?}")]
    InvalidTag {
        /// The reference as given.
        reference: String,
    },
    /// The digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest in image reference {reference:?} (only sha256 is supported)")]
    InvalidDigest {
        /// The reference as given.
        reference: String,
    },
}

/// A parsed, normalised image reference.
///
/// `busybox` is `docker.io/library/busybox:latest`; `localhost:5000/x` keeps its host;
/// with a digest, the digest decides what is pulled and the tag is informative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference (same as `str::parse`).
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        reference.parse()
    }

    /// The registry host (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, `latest` when neither a tag nor a digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned manifest digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository pinned to `digest` (no tag).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self { digest: Some(digest.to_string()), tag: None, ..self.clone() }
    }

    /// The reference for `oci-client`.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => {
                oci_client::Reference::with_digest(self.registry.clone(), self.repository.clone(), d.clone())
            }
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| DEFAULT_TAG.to_string()),
            ),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `s` is `sha256:` + 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by `.`, `_`, `__` or `-`s.
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

fn valid_tag(t: &str) -> bool {
    t.len() <= 128
        && t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(reference: &str) -> Result<Self, Self::Err> {
        let given = || reference.to_string();
        if reference.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) if is_sha256_digest(d) => (n, Some(d.to_string())),
            Some(_) => return Err(ReferenceError::InvalidDigest { reference: given() }),
            None => (reference, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(name[slash + i + 1..].to_string())),
            None => (name, None),
        };
        if tag.as_deref().is_some_and(|t| !valid_tag(t)) {
            return Err(ReferenceError::InvalidTag { reference: given() });
        }
        let (registry, path) = match name.split_once('/') {
            Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
                (host.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" { DEFAULT_REGISTRY.into() } else { registry };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !repository.split('/').all(valid_component) || registry.is_empty() {
            return Err(ReferenceError::InvalidName { reference: given() });
        }
        let tag = if tag.is_none() && digest.is_none() { Some(DEFAULT_TAG.into()) } else { tag };
        Ok(Self { registry, repository, tag, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_defaults() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = ImageRef::parse("bitnami/redis:7.2").unwrap();
        assert_eq!(r.to_string(), "docker.io/bitnami/redis:7.2");
        let r = ImageRef::parse("index.docker.io/library/alpine:3").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:3");
    }

    #[test]
    fn hosts_ports_and_digests() {
        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("localhost:5000", "x", Some("latest")));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/a/b:v1@{D}")).unwrap();
        assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "a/b"));
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(D)));
        let r = ImageRef::parse(&format!("mcr.microsoft.com/azuredocs/aci-helloworld@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_oci().digest(), Some(D));
    }

    #[test]
    fn rejects_bad_references() {
        assert_eq!(ImageRef::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(ImageRef::parse("Busybox"), Err(ReferenceError::InvalidName { .. })));
        assert!(matches!(ImageRef::parse("a:b:c"), Err(ReferenceError::InvalidName { .. })));
        assert!(matches!(ImageRef::parse("a:-x"), Err(ReferenceError::InvalidTag { .. })));
        assert!(matches!(ImageRef::parse("a@sha256:12"), Err(ReferenceError::InvalidDigest { .. })));
        assert!(matches!(ImageRef::parse("a/../b"), Err(ReferenceError::InvalidName { .. })));
    }
}
