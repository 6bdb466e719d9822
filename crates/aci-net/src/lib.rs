//! # aci-net — host networking for container groups
//!
//! This crate will own the host side of a group's network: tap devices, one bridge per
//! virtual network inside a network namespace aci owns, address management, published ports
//! (TCP and UDP), DNS name labels and the isolation rules between virtual networks.
//!
//! State: empty until the networking issue lands.
