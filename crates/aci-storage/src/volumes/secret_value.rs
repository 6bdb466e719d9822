//! [`SecretValue`]: bytes the runtime may use but never shows.

use std::fmt;

/// A secret: a `secret` volume file (base64 text before decoding, raw bytes after), or an
/// `azureFile` storage account key.
///
/// `Debug` prints `SecretValue(<redacted>)`; there is no `Display`. The bytes are zeroed when
/// the value is dropped, so a decoded secret does not linger in freed memory.
///
/// ```
/// use aci_storage::volumes::SecretValue;
///
/// let key = SecretValue::new("hunter2");
/// assert_eq!(key.expose(), b"hunter2");
/// assert_eq!(format!("{key:?}"), "SecretValue(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// What `Debug` shows instead of the value.
    pub const REDACTED: &'static str = "<redacted>";

    /// Wraps a secret.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The bytes, for the code that must hand them on (the agent, the guest kernel).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretValue").field(&format_args!("{}", Self::REDACTED)).finish()
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keep the zeroing from being optimized away as a dead store.
        std::hint::black_box(&self.0);
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}
