//! Outbound NAT (root): the uplink and aci's host table exist exactly while a NAT network does;
//! a guest's packets are forwarded and masqueraded out of the namespace, but cannot open
//! connections to the host's addresses. (Forwarding to
//! the outside itself needs `net.ipv4.ip_forward=1`, which the tests do not change.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use aci_net::{nft, NetworkConfig};
use common::{can_run, stdout, Env, FakeGuest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_uplink_and_host_table_live_with_the_network() {
    if !can_run("nat_uplink_and_host_table_live_with_the_network") {
        return;
    }
    let env = Env::new("nat");
    let cfg = NetworkConfig {
        name: "n".into(),
        subnet: Ipv4Addr::new(10, 231, 6, 0),
        prefix: 24,
        outbound_nat: true,
    };
    env.mgr.create_network(&cfg).await.unwrap();
    let table = env.mgr.host_table();
    let slot = aci_net::network::slot_hint(&env.prefix, "n");
    let up = aci_net::network::uplink_plan(&env.prefix, "n", slot);
    assert!(stdout("ip", &["-o", "link", "show", "dev", &up.host_if]).contains(&up.host_if));
    assert!(nft::host_tables().unwrap().contains(&format!("inet {table}")));
    let host_rules = stdout("nft", &["list", "table", "inet", &table]);
    assert!(host_rules.contains("masquerade") && host_rules.contains(&up.host_if), "{host_rules}");
    let ns = env.mgr.namespace_of("n");
    let ns_rules = stdout("ip", &["netns", "exec", &ns, "nft", "list", "table", "inet", "aci"]);
    assert!(ns_rules.contains("oifname \"up0\" masquerade"), "{ns_rules}");

    // A guest cannot reach a service on the host's end of the uplink.
    let att = env.mgr.attach("n", "g1", false).await.unwrap();
    let guest = FakeGuest::start(&env, "g1", att);
    let host_side = TcpListener::bind((up.host_addr, 0)).unwrap();
    let to = SocketAddr::new(up.host_addr.into(), host_side.local_addr().unwrap().port());
    let res = guest.run(move || TcpStream::connect_timeout(&to, Duration::from_millis(800)));
    assert!(res.is_err(), "guest reached a host address through the uplink");
    drop((host_side, guest));
    // …and it was aci's host rule that dropped it: the guest's SYNs were forwarded inside the
    // namespace, masqueraded and counted at the host's input.
    let rules = stdout("nft", &["list", "chain", "inet", &table, "input"]);
    let dropped = rules
        .lines()
        .find(|l| l.contains("counter") && l.contains("drop"))
        .and_then(|l| l.split("packets ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(dropped.is_some_and(|n| n > 0), "no packet reached the host's drop rule: {rules}");

    env.mgr.detach("n", "g1").await.unwrap();
    env.mgr.delete_network("n").await.unwrap();
    assert!(!stdout("ip", &["-o", "link"]).contains(&up.host_if), "uplink left on the host");
    assert!(!nft::host_tables().unwrap().contains(&format!("inet {table}")), "host table left");
    assert_eq!(env.leftovers(), Vec::<String>::new());
}
