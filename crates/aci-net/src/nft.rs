//! aci's nftables table (`inet aci`) inside a network's namespace: the isolation rules. Applied
//! with the `nft` command and a text ruleset (atomic per `nft -f`); a crate binding libnftnl
//! would add a C dependency for no gain here, and the text is what operators read anyway.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::netns::{self, NetnsError};

/// The table aci owns in every network namespace.
pub const TABLE: &str = "aci";

/// Errors of nftables operations.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// Entering the namespace failed.
    #[error("cannot run nft in the namespace")]
    Namespace(#[source] NetnsError),
    /// Spawning `nft` failed (is the `nftables` package installed?).
    #[error("cannot run nft")]
    Spawn(#[source] std::io::Error),
    /// `nft` rejected the ruleset.
    #[error("nft failed: {stderr}")]
    Apply {
        /// What nft printed.
        stderr: String,
    },
}

/// Inputs of the isolation ruleset.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The network's subnet address.
    pub subnet: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The gateway address (the bridge's), where the network's DNS service listens.
    pub gateway: Ipv4Addr,
    /// Outbound NAT: forward from the bridge out of the uplink, masqueraded.
    pub outbound_nat: bool,
}

/// The ruleset text: input to the namespace only for DNS on the gateway (and replies); forwarding
/// only inside the subnet. Recreates the table so applying twice is idempotent.
pub fn ruleset(iso: &Isolation) -> String {
    let Isolation { subnet, prefix, gateway, outbound_nat } = iso;
    let up = crate::links::UPLINK;
    let (nat_forward, nat_chain) = if *outbound_nat {
        (
            format!("\t\tiifname \"br0\" oifname \"{up}\" accept\n"),
            format!(
                "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\
                 \t\toifname \"{up}\" masquerade\n\t}}\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiif \"lo\" accept\n\
         \t\tip daddr {gateway} udp dport 53 accept\n\
         \t\tip daddr {gateway} tcp dport 53 accept\n\
         \t\tip daddr {gateway} icmp type echo-request accept\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tip saddr {subnet}/{prefix} ip daddr {subnet}/{prefix} accept\n\
         {nat_forward}\
         \t}}\n\
         {nat_chain}\
         }}\n"
    )
}

/// One NAT network's uplink as the host table sees it.
#[derive(Debug, Clone)]
pub struct HostUplink {
    /// Host-side veth name.
    pub host_if: String,
    /// The namespace side's (transit) address, the source the host masquerades.
    pub ns_addr: Ipv4Addr,
}

/// aci's host table `inet <table>`: uplinks may not open connections to host addresses (input),
/// nothing but replies enters an uplink (forward), and traffic leaving through another interface
/// is masqueraded (postrouting).
pub fn host_ruleset(table: &str, uplinks: &[HostUplink]) -> String {
    let ifs = uplinks.iter().map(|u| format!("\"{}\"", u.host_if)).collect::<Vec<_>>().join(", ");
    let srcs = uplinks.iter().map(|u| u.ns_addr.to_string()).collect::<Vec<_>>().join(", ");
    format!(
        "table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname {{ {ifs} }} ct state established,related accept\n\
         \t\tiifname {{ {ifs} }} counter drop\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\toifname {{ {ifs} }} ct state established,related accept\n\
         \t\toifname {{ {ifs} }} drop\n\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {{ {srcs} }} oifname != {{ {ifs} }} masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Replaces aci's host table with the rules for `uplinks`, or removes it when there are none.
pub fn apply_host(table: &str, uplinks: &[HostUplink]) -> Result<(), NftError> {
    let text = if uplinks.is_empty() {
        format!("table inet {table}\ndelete table inet {table}\n")
    } else {
        host_ruleset(table, uplinks)
    };
    run_nft(&["-f", "-"], Some(&text)).map(|_| ())
}

/// Table names (`family name`) in the caller's (host) namespace.
pub fn host_tables() -> Result<Vec<String>, NftError> {
    let out = run_nft(&["list", "tables"], None)?;
    Ok(out.lines().filter_map(|l| l.strip_prefix("table ")).map(str::to_owned).collect())
}

/// Runs `nft -f -` with `input` inside namespace `ns`.
pub fn apply(ns: &str, input: String) -> Result<(), NftError> {
    netns::run_in(ns, move || run_nft(&["-f", "-"], Some(&input))).map_err(NftError::Namespace)?.map(|_| ())
}

/// Removes aci's table inside namespace `ns` (missing table is fine).
pub fn remove(ns: &str) -> Result<(), NftError> {
    let rs = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    apply(ns, rs)
}

/// Lists table names (`family name`) inside namespace `ns`.
pub fn tables(ns: &str) -> Result<Vec<String>, NftError> {
    let out = netns::run_in(ns, || run_nft(&["list", "tables"], None)).map_err(NftError::Namespace)??;
    Ok(out.lines().filter_map(|l| l.strip_prefix("table ")).map(str::to_owned).collect())
}

fn run_nft(args: &[&str], input: Option<&str>) -> Result<String, NftError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Apply { stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
