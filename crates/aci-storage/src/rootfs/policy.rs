//! What the unpacker does with entries that are legal tar but unwelcome in a rootfs, and the
//! warnings it records when it skips or changes something.

use std::fmt;

/// How device nodes (character and block) in a layer are handled. FIFOs are always created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePolicy {
    /// Leave the node out and record a [`UnpackWarning`].
    #[default]
    Skip,
    /// Fail the unpack with [`crate::rootfs::RootfsError::Rejected`].
    Reject,
}

/// How setuid/setgid bits in a layer are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetuidPolicy {
    /// Keep the bits (they only matter inside the guest).
    #[default]
    Keep,
    /// Clear the bits and record a [`UnpackWarning`].
    Strip,
    /// Fail the unpack with [`crate::rootfs::RootfsError::Rejected`].
    Reject,
}

/// The unpack policy. Paths are always contained in the target directory whatever this says;
/// entries with `..` components are skipped with a warning.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackPolicy {
    /// Device nodes.
    pub devices: DevicePolicy,
    /// Setuid and setgid bits.
    pub setuid: SetuidPolicy,
}

/// Why an entry was skipped or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The entry path had a `..` component.
    ParentComponent,
    /// The entry path was absolute and was made relative to the root.
    AbsolutePath,
    /// A device node was skipped.
    DeviceSkipped,
    /// Setuid/setgid bits were cleared.
    SetuidStripped,
    /// A hard link pointed at something that does not exist inside the root, or at a directory.
    BadHardlink(String),
    /// Ownership could not be set (not running as root).
    OwnershipNotSet,
    /// An extended attribute could not be set (name and cause).
    XattrNotSet(String),
    /// An entry type the unpacker does not know.
    UnsupportedType(String),
}

/// One thing the unpacker skipped or changed, naming the layer and the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackWarning {
    /// The layer (its digest, or a file name).
    pub layer: String,
    /// The entry path as written in the layer.
    pub path: String,
    /// What happened.
    pub kind: WarningKind,
}

impl fmt::Display for UnpackWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            WarningKind::ParentComponent => "skipped: path has a `..` component".to_string(),
            WarningKind::AbsolutePath => "absolute path made relative to the root".to_string(),
            WarningKind::DeviceSkipped => "skipped: device node".to_string(),
            WarningKind::SetuidStripped => "setuid/setgid bits cleared".to_string(),
            WarningKind::BadHardlink(t) => format!("skipped: hard link to {t} not found in root"),
            WarningKind::OwnershipNotSet => "ownership not set (not root)".to_string(),
            WarningKind::XattrNotSet(x) => format!("extended attribute not set: {x}"),
            WarningKind::UnsupportedType(t) => format!("skipped: unsupported entry type {t}"),
        };
        write!(f, "layer {} entry {}: {what}", self.layer, self.path)
    }
}
