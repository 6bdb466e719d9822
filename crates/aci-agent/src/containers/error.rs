//! The engine's errors, and how they map onto the protocol's [`RemoteError`] kinds.

use aci_proto::message::{RemoteError, RemoteErrorKind};
use thiserror::Error;

/// A container call failed. Every variant names the container it is about.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The call names a container that was never created (or was removed).
    #[error("no container named {0:?}")]
    NoSuchContainer(String),
    /// The call does not fit the container's state (a second create, an exec in a stopped
    /// container, a start of a running one).
    #[error("container {name:?}: {what}")]
    InvalidState {
        /// The container.
        name: String,
        /// What is wrong, in words.
        what: String,
    },
    /// The configuration cannot be turned into a runnable container.
    #[error("container {name:?}: invalid configuration: {what}")]
    InvalidConfig {
        /// The container.
        name: String,
        /// The field and the problem.
        what: String,
    },
    /// The process could not be started (unknown command, bad working directory, bad user).
    #[error("container {name:?}: cannot start {command:?}: {reason}")]
    StartFailed {
        /// The container.
        name: String,
        /// The command (`args[0]`).
        command: String,
        /// What the runtime reported.
        reason: String,
    },
    /// Preparing or tearing down the container's filesystem, cgroup or bundle failed.
    #[error("container {name:?}: {step} failed: {source}")]
    Setup {
        /// The container.
        name: String,
        /// The step, e.g. "mounting the overlay rootfs".
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The OCI runtime refused an operation other than starting the process.
    #[error("container {name:?}: {step} failed: {reason}")]
    Runtime {
        /// The container.
        name: String,
        /// The operation.
        step: &'static str,
        /// The runtime's error chain.
        reason: String,
    },
}

impl EngineError {
    /// A [`EngineError::Setup`] for `name` at `step`.
    pub fn setup<'a>(name: &'a str, step: &'static str) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| Self::Setup { name: name.to_owned(), step, source }
    }

    /// The protocol's class for this error.
    pub fn kind(&self) -> RemoteErrorKind {
        match self {
            Self::NoSuchContainer(_) => RemoteErrorKind::NoSuchContainer,
            Self::InvalidState { .. } => RemoteErrorKind::InvalidState,
            Self::StartFailed { .. } => RemoteErrorKind::StartFailed,
            Self::InvalidConfig { .. } | Self::Setup { .. } | Self::Runtime { .. } => RemoteErrorKind::Failed,
        }
    }
}

impl From<EngineError> for RemoteError {
    fn from(err: EngineError) -> Self {
        RemoteError { kind: err.kind(), message: err.to_string() }
    }
}

/// Formats an error with its whole `source()` chain, `a: b: c` (runtime errors nest deeply
/// and the useful part is usually at the bottom).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn kinds_map_and_messages_name_the_container() {
        let err = EngineError::StartFailed {
            name: "web".into(),
            command: "nginx".into(),
            reason: "not found".into(),
        };
        let remote = RemoteError::from(err);
        assert_eq!(remote.kind, RemoteErrorKind::StartFailed);
        assert_eq!(remote.message, r#"container "web": cannot start "nginx": not found"#);
        assert_eq!(EngineError::NoSuchContainer("x".into()).kind(), RemoteErrorKind::NoSuchContainer);
        let busy = EngineError::InvalidState { name: "x".into(), what: "it is already running".into() };
        assert_eq!(busy.kind(), RemoteErrorKind::InvalidState);
        let setup = EngineError::setup("db", "mounting the overlay root")(std::io::Error::from_raw_os_error(
            libc::EBUSY,
        ));
        assert_eq!(setup.kind(), RemoteErrorKind::Failed);
        assert!(
            setup.to_string().starts_with(r#"container "db": mounting the overlay root failed: "#),
            "{setup}"
        );
    }

    #[test]
    fn chains_include_every_cause_once() {
        let err = Outer(std::io::Error::other("inner cause"));
        assert_eq!(chain(&err), "outer: inner cause");
    }
}
