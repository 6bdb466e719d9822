//! Network interfaces: `lo` up, and each interface the host describes (matched by MAC)
//! given its addresses, MTU, up state and default route, over rtnetlink.

use std::io;
use std::net::IpAddr;
use std::path::Path;

use aci_proto::sandbox::InterfaceConfig;

use super::netlink::{Message, Netlink};

/// Errors of the interface set-up; each names the MAC or interface concerned.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The MAC is not `aa:bb:cc:dd:ee:ff`.
    #[error("MAC address {0:?} is not six hex pairs separated by colons")]
    Mac(String),
    /// No interface has the MAC.
    #[error("no network interface has MAC address {mac} (interfaces: {present})")]
    NoSuchInterface {
        /// The MAC asked for.
        mac: String,
        /// `name=mac` of the interfaces present.
        present: String,
    },
    /// An address is not `ip/prefix`.
    #[error("address {address:?} of interface {mac} is not an IP address with a prefix length")]
    Address {
        /// The address as given.
        address: String,
        /// The interface's MAC.
        mac: String,
    },
    /// The gateway is not an IP address.
    #[error("gateway {gateway:?} of interface {mac} is not an IP address")]
    Gateway {
        /// The gateway as given.
        gateway: String,
        /// The interface's MAC.
        mac: String,
    },
    /// The MTU is out of range.
    #[error("MTU {mtu} of interface {mac} is outside 68..=65535")]
    Mtu {
        /// The MTU as given.
        mtu: u32,
        /// The interface's MAC.
        mac: String,
    },
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),
    /// A netlink request failed.
    #[error("{step} on {interface} failed")]
    Request {
        /// What was asked (`setting the MTU and up`, `adding 10.0.0.2/24`).
        step: String,
        /// The interface name.
        interface: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// `/sys/class/net` could not be read.
    #[error("cannot list the network interfaces in {0}")]
    List(String, #[source] io::Error),
}

/// A guest network interface as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// The MAC address.
    pub mac: [u8; 6],
}

/// A parsed interface configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The MAC.
    pub mac: [u8; 6],
    /// Addresses with prefix lengths.
    pub addresses: Vec<(IpAddr, u8)>,
    /// The default gateway.
    pub gateway: Option<IpAddr>,
    /// The MTU.
    pub mtu: Option<u32>,
}

/// Parses `aa:bb:cc:dd:ee:ff` (either case).
pub fn parse_mac(text: &str) -> Result<[u8; 6], NetworkError> {
    let bad = || NetworkError::Mac(text.to_owned());
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `10.0.0.5/24` or `fd00::5/64`.
fn parse_address(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

/// Checks an interface configuration.
pub fn plan(config: &InterfaceConfig) -> Result<Plan, NetworkError> {
    let mac = parse_mac(&config.mac)?;
    let shown = format_mac(&mac);
    let addresses = config
        .addresses
        .iter()
        .map(|a| {
            parse_address(a).ok_or_else(|| NetworkError::Address { address: a.clone(), mac: shown.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let gateway = config
        .gateway
        .as_deref()
        .map(|g| g.parse().map_err(|_| NetworkError::Gateway { gateway: g.to_owned(), mac: shown.clone() }))
        .transpose()?;
    if let Some(mtu) = config.mtu.filter(|m| !(68..=65535).contains(m)) {
        return Err(NetworkError::Mtu { mtu, mac: shown });
    }
    Ok(Plan { mac, addresses, gateway, mtu: config.mtu })
}

/// The interfaces in `sys_class_net` (normally `/sys/class/net`), sorted by name.
pub fn links(sys_class_net: &Path) -> Result<Vec<Link>, NetworkError> {
    let list_err = |e| NetworkError::List(sys_class_net.display().to_string(), e);
    let mut links = Vec::new();
    for entry in std::fs::read_dir(sys_class_net).map_err(list_err)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let read = |file: &str| std::fs::read_to_string(entry.path().join(file)).unwrap_or_default();
        let (Ok(mac), Ok(index)) = (parse_mac(read("address").trim()), read("ifindex").trim().parse()) else {
            continue;
        };
        links.push(Link { name, index, mac });
    }
    links.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(links)
}

/// Finds the link with `mac`.
pub fn find<'a>(links: &'a [Link], mac: &[u8; 6]) -> Result<&'a Link, NetworkError> {
    links.iter().find(|l| &l.mac == mac && l.name != "lo").ok_or_else(|| NetworkError::NoSuchInterface {
        mac: format_mac(mac),
        present: links
            .iter()
            .filter(|l| l.name != "lo")
            .map(|l| format!("{}={}", l.name, format_mac(&l.mac)))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Opens a netlink socket for [`loopback_up`] and [`apply`].
pub fn open() -> Result<Netlink, NetworkError> {
    Netlink::open().map_err(NetworkError::Socket)
}

/// Brings `lo` up (the kernel gives it 127.0.0.1 and ::1).
pub fn loopback_up(netlink: &mut Netlink, links: &[Link]) -> Result<(), NetworkError> {
    let index = links.iter().find(|l| l.name == "lo").map_or(1, |l| l.index);
    let step = "bringing up".to_owned();
    netlink.request(Message::link_up(index, None)).map_err(|source| NetworkError::Request {
        step,
        interface: "lo".into(),
        source,
    })
}

/// Applies `plan` to `link`: MTU and up, addresses, default route.
pub fn apply(netlink: &mut Netlink, link: &Link, plan: &Plan) -> Result<(), NetworkError> {
    let failed = |step: String| {
        let interface = link.name.clone();
        move |source| NetworkError::Request { step, interface, source }
    };
    netlink
        .request(Message::link_up(link.index, plan.mtu))
        .map_err(failed("setting the MTU and up".into()))?;
    for &(ip, prefix) in &plan.addresses {
        netlink
            .request(Message::address_add(link.index, ip, prefix))
            .map_err(failed(format!("adding address {ip}/{prefix}")))?;
    }
    if let Some(gateway) = plan.gateway {
        netlink
            .request(Message::default_route(link.index, gateway))
            .map_err(failed(format!("adding the default route via {gateway}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_in_either_case_and_bad_ones_are_named() {
        assert_eq!(parse_mac("02:AC:1d:00:00:0f").unwrap(), [2, 0xac, 0x1d, 0, 0, 0xf]);
        assert_eq!(format_mac(&[2, 0xac, 0x1d, 0, 0, 0xf]), "02:ac:1d:00:00:0f");
        for bad in [
            "",
            "02:ac:1d:00:00",
            "02:ac:1d:00:00:0f:00",
            "2:ac:1d:00:00:0f",
            "02-ac-1d-00-00-0f",
            "zz:ac:1d:00:00:0f",
        ] {
            let err = parse_mac(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn interface_plans_name_the_bad_field() {
        let config = |addresses: &[&str], gateway: Option<&str>, mtu| InterfaceConfig {
            mac: "02:00:00:00:00:01".into(),
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            gateway: gateway.map(str::to_owned),
            mtu,
        };
        let plan_ok = plan(&config(&["10.0.0.2/24", "fd00::2/64"], Some("10.0.0.1"), Some(1400))).unwrap();
        assert_eq!(plan_ok.addresses[1], ("fd00::2".parse().unwrap(), 64));
        assert_eq!(plan_ok.gateway, Some("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.2", "10.0.0.2/33", "fd00::2/129", "host/24"] {
            let err = plan(&config(&[bad], None, None)).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")) && err.contains("02:00:00:00:00:01"), "{err}");
        }
        let err = plan(&config(&[], Some("gw"), None)).unwrap_err().to_string();
        assert!(err.contains("\"gw\""), "{err}");
        let err = plan(&config(&[], None, Some(10))).unwrap_err().to_string();
        assert!(err.contains("MTU 10"), "{err}");
    }

    #[test]
    fn links_are_read_from_sysfs_and_a_missing_mac_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mac, index) in [("lo", "00:00:00:00:00:00", 1), ("eth0", "02:ac:1d:00:00:02", 2)] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("address"), format!("{mac}\n")).unwrap();
            std::fs::write(dir.path().join(name).join("ifindex"), format!("{index}\n")).unwrap();
        }
        let found = links(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        let eth0 = find(&found, &[2, 0xac, 0x1d, 0, 0, 2]).unwrap();
        assert_eq!((eth0.name.as_str(), eth0.index), ("eth0", 2));
        let err = find(&found, &[2, 0, 0, 0, 0, 9]).unwrap_err().to_string();
        assert!(err.contains("02:00:00:00:00:09") && err.contains("eth0=02:ac:1d:00:00:02"), "{err}");
    }
}
