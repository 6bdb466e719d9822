//! virtio-net feature bits the device offers, and the tap offloads they map to.
//!
//! With a tap opened with `IFF_VNET_HDR` the 12-byte `virtio_net_hdr_v1` goes through the tap
//! unchanged, so checksum and segmentation offloads cost the device nothing: the guest sends
//! up to 64 KiB TCP segments (`HOST_TSO4/6`) with partial checksums (`CSUM`), and the host's
//! large segments reach the guest whole (`GUEST_TSO4/6`, `GUEST_CSUM`) in chains of
//! mergeable receive buffers (`MRG_RXBUF`). Without `IFF_VNET_HDR` only `MAC` is offered.

use crate::virtio::VIRTIO_F_VERSION_1;

/// `VIRTIO_NET_F_CSUM`: the device takes packets with partial checksums.
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
/// `VIRTIO_NET_F_GUEST_CSUM`: the driver takes packets with partial checksums.
pub const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
/// `VIRTIO_NET_F_MAC`: the config space holds the MAC address.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// `VIRTIO_NET_F_GUEST_TSO4`: the driver takes TCPv4 segments larger than the MTU.
pub const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
/// `VIRTIO_NET_F_GUEST_TSO6`: the driver takes TCPv6 segments larger than the MTU.
pub const VIRTIO_NET_F_GUEST_TSO6: u64 = 1 << 8;
/// `VIRTIO_NET_F_HOST_TSO4`: the device takes TCPv4 segments larger than the MTU.
pub const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;
/// `VIRTIO_NET_F_HOST_TSO6`: the device takes TCPv6 segments larger than the MTU.
pub const VIRTIO_NET_F_HOST_TSO6: u64 = 1 << 12;
/// `VIRTIO_NET_F_MRG_RXBUF`: a received packet may span several receive buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// `VIRTIO_RING_F_EVENT_IDX`: both sides say how far the other may go before notifying.
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// `TUN_F_CSUM`: the tap may hand out packets with partial checksums.
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: the tap may hand out TCPv4 segments larger than the MTU.
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: the tap may hand out TCPv6 segments larger than the MTU.
pub const TUN_F_TSO6: u32 = 0x04;

/// Offloads that need the header to pass through the tap.
const OFFLOADS: u64 = VIRTIO_NET_F_CSUM
    | VIRTIO_NET_F_GUEST_CSUM
    | VIRTIO_NET_F_GUEST_TSO4
    | VIRTIO_NET_F_GUEST_TSO6
    | VIRTIO_NET_F_HOST_TSO4
    | VIRTIO_NET_F_HOST_TSO6;

/// The features offered over a tap with (`vnet_hdr`) or without `IFF_VNET_HDR`.
pub fn offered(vnet_hdr: bool) -> u64 {
    let base = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_RING_F_EVENT_IDX;
    if vnet_hdr {
        base | OFFLOADS
    } else {
        base
    }
}

/// The `TUNSETOFFLOAD` flags for the features the driver accepted: what the guest can
/// receive (a segmentation offload only together with checksum offload, as the tap requires).
pub fn tap_offloads(acked: u64) -> u32 {
    if acked & VIRTIO_NET_F_GUEST_CSUM == 0 {
        return 0;
    }
    let mut flags = TUN_F_CSUM;
    if acked & VIRTIO_NET_F_GUEST_TSO4 != 0 {
        flags |= TUN_F_TSO4;
    }
    if acked & VIRTIO_NET_F_GUEST_TSO6 != 0 {
        flags |= TUN_F_TSO6;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offloads_need_the_vnet_header_and_follow_the_driver() {
        assert_eq!(offered(false) & OFFLOADS, 0);
        assert_eq!(offered(true) & OFFLOADS, OFFLOADS);
        assert_eq!(tap_offloads(VIRTIO_NET_F_GUEST_TSO4), 0, "TSO without checksum offload");
        let all = offered(true);
        assert_eq!(tap_offloads(all), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
        assert_eq!(tap_offloads(VIRTIO_NET_F_GUEST_CSUM), TUN_F_CSUM);
    }
}
