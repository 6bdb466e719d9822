//! [`Secret`]: a value the runtime can read but that is never shown back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string: an environment variable's `secureValue`, a `secret` volume file, an Azure
/// file share's `storageAccountKey`, a registry `password`, a Log Analytics `workspaceKey`.
///
/// Like ACI, aci never shows a secret back: `Debug`, `Display` and serialization all print
/// [`Secret::REDACTED`]. Reading a file that holds the placeholder (say, the output of a
/// serialized group) gives a *withheld* secret, which [`validate`](crate::spec::ContainerGroup::validate)
/// rejects, so a placeholder is never mistaken for the real value.
///
/// ```
/// use aci_core::spec::Secret;
///
/// let key = Secret::new("hunter2");
/// assert_eq!(key.expose(), Some("hunter2"));
/// assert_eq!(format!("{key:?} {key}"), "Secret(<redacted>) <redacted>");
/// assert_eq!(serde_json::to_string(&key)?, "\"<redacted>\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Option<String>);

impl Secret {
    /// What is shown instead of a secret.
    pub const REDACTED: &'static str = "<redacted>";

    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Some(value.into()))
    }

    /// A secret whose value was not given back (it was read as [`Secret::REDACTED`]).
    pub fn withheld() -> Self {
        Self(None)
    }

    /// The value, for the runtime to use; `None` if it was withheld.
    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether the value was withheld (read back as the placeholder).
    pub fn is_withheld(&self) -> bool {
        self.0.is_none()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", Self::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        if value == Self::REDACTED {
            Ok(Self::withheld())
        } else {
            Ok(Self::new(value))
        }
    }
}
