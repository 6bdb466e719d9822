//! Events of groups and containers: what happened, kept in the instance view (aggregated
//! like Kubernetes and ACI: a repeat of the same name and message bumps `count` and
//! `lastTimestamp`) and broadcast to subscribers as [`RuntimeEvent`]s.

use serde::{Deserialize, Serialize};

use super::clock::rfc3339_ms;
use crate::spec::Event;

/// The names of the events the runtime reports (ACI's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventName {
    /// An image pull started.
    Pulling,
    /// An image is in the cache and its disk is ready.
    Pulled,
    /// A container was created in the guest.
    Created,
    /// A container's process started.
    Started,
    /// A container is being stopped.
    Killing,
    /// A container that exited will be restarted after a delay.
    BackOff,
    /// Something failed: a pull, the VM, a container's start, an init container.
    Failed,
    /// The group stopped (its VM was released).
    Stopped,
    /// A liveness or readiness probe attempt failed (see `docs/probes.md`).
    Unhealthy,
}

impl EventName {
    /// The name as ACI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pulling => "Pulling",
            Self::Pulled => "Pulled",
            Self::Created => "Created",
            Self::Started => "Started",
            Self::Killing => "Killing",
            Self::BackOff => "BackOff",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
            Self::Unhealthy => "Unhealthy",
        }
    }
}

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Expected progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// One event as broadcast by [`super::Runtime::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeEvent {
    /// The group.
    pub group: String,
    /// The deployment it belongs to.
    pub deployment: u32,
    /// The container, for container events.
    pub container: Option<String>,
    /// What happened.
    pub name: EventName,
    /// Normal or warning.
    pub kind: EventKind,
    /// Details for humans.
    pub message: String,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
}

/// Adds `event` to an instance view's event list, aggregating repeats.
pub fn aggregate(list: &mut Vec<Event>, event: &RuntimeEvent) {
    let when = rfc3339_ms(event.time_ms);
    let kind = match event.kind {
        EventKind::Normal => "Normal",
        EventKind::Warning => "Warning",
    };
    if let Some(e) = list.iter_mut().find(|e| {
        e.name.as_deref() == Some(event.name.as_str()) && e.message.as_deref() == Some(&event.message)
    }) {
        e.count = Some(e.count.unwrap_or(1) + 1);
        e.last_timestamp = Some(when);
        return;
    }
    list.push(Event {
        count: Some(1),
        first_timestamp: Some(when.clone()),
        last_timestamp: Some(when),
        name: Some(event.name.as_str().to_string()),
        message: Some(event.message.clone()),
        kind: Some(kind.to_string()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_not_duplicated() {
        let mut list = Vec::new();
        let ev = |name, message: &str, t| RuntimeEvent {
            group: "g".into(),
            deployment: 1,
            container: Some("c".into()),
            name,
            kind: EventKind::Warning,
            message: message.into(),
            time_ms: t,
        };
        aggregate(&mut list, &ev(EventName::BackOff, "Back-off restarting failed container", 0));
        aggregate(&mut list, &ev(EventName::Started, "Started container", 500));
        aggregate(&mut list, &ev(EventName::BackOff, "Back-off restarting failed container", 1000));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].count, Some(2));
        assert_eq!(list[0].first_timestamp.as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(list[0].last_timestamp.as_deref(), Some("1970-01-01T00:00:01.000Z"));
        assert_eq!(list[0].kind.as_deref(), Some("Warning"));
    }
}
