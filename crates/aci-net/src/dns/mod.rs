//! DNS name labels and the server answering them.

pub mod labels;
pub mod server;

pub use labels::{DnsLabels, LabelError, LabelOwner, LabelScope};
pub use server::{DnsServer, DnsServerError};
