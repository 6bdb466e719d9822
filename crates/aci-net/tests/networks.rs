//! Real kernel networking (root): groups on one network reach each other, other networks and
//! the gateway's non-DNS ports are blocked, the guest resolves through the gateway, IPAM persists,
//! cleanup and recovery leave nothing behind. Fake guests stand in for VMs (see `common`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use aci_net::dns::{DnsLabels, DnsServer, LabelOwner, LabelScope};
use aci_net::{links, netns, ManagerError, NetworkConfig};
use common::{can_run, stdout, Env, FakeGuest};

fn net(name: &str, third: u8, prefix: u8) -> NetworkConfig {
    NetworkConfig { name: name.into(), subnet: Ipv4Addr::new(10, 231, third, 0), prefix, outbound_nat: false }
}

/// Connects to `to` from inside the current namespace, retrying a few times (ARP, bridge
/// learning); returns the last error.
fn connect(to: SocketAddr, tries: u32) -> std::io::Result<TcpStream> {
    let mut last = None;
    for _ in 0..tries {
        match TcpStream::connect_timeout(&to, Duration::from_millis(700)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no attempt")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_on_one_network_talk_and_isolation_holds() {
    if !can_run("groups_on_one_network_talk_and_isolation_holds") {
        return;
    }
    let env = Env::new("iso");
    env.mgr.create_network(&net("a", 1, 24)).await.unwrap();
    env.mgr.create_network(&net("b", 2, 24)).await.unwrap();
    let g1 = FakeGuest::start(&env, "g1", env.mgr.attach("a", "g1", false).await.unwrap());
    let g2 = FakeGuest::start(&env, "g2", env.mgr.attach("a", "g2", false).await.unwrap());
    let g3 = FakeGuest::start(&env, "g3", env.mgr.attach("b", "g3", false).await.unwrap());
    assert_eq!(g1.address, Ipv4Addr::new(10, 231, 1, 2));
    assert_eq!(g2.address, Ipv4Addr::new(10, 231, 1, 3));

    // g2 serves one TCP connection on 7000.
    let listener = g2.run(|| TcpListener::bind("0.0.0.0:7000").unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"hello from g2").unwrap();
    });
    let to_g2 = SocketAddr::new(g2.address.into(), 7000);
    let got = g1.run(move || {
        let mut s = connect(to_g2, 10).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    });
    server.join().unwrap();
    assert_eq!(got, "hello from g2");

    // Network B cannot reach network A (no path between the namespaces at all).
    let blocked = g3.run(move || connect(to_g2, 2));
    assert!(blocked.is_err(), "g3 on network b reached g2 on network a");

    // The gateway accepts nothing but DNS: a service on the gateway's TCP 7001 is unreachable.
    let gw_ns = env.mgr.namespace_of("a");
    let gw_listener = netns::run_in(&gw_ns, || TcpListener::bind("10.231.1.1:7001").unwrap()).unwrap();
    let to_gw = SocketAddr::from(([10, 231, 1, 1], 7001));
    let res = g1.run(move || connect(to_gw, 2));
    assert!(res.is_err(), "guest reached a non-DNS service on the gateway");
    drop(gw_listener);

    // DNS on the gateway is allowed: a guest resolves g2's label through it to g2's private
    // address, while the host gets the published one.
    let labels = Arc::new(DnsLabels::new("westeurope", "azurecontainer.io"));
    let dns = DnsServer::start(labels.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    dns.add_network_socket(env.mgr.dns_socket("a").unwrap(), "a").unwrap();
    let owner = LabelOwner::default();
    let fqdn = labels.register("peer", LabelScope::Unsecure, &owner, "g2", Ipv4Addr::LOCALHOST).unwrap();
    labels.set_private("g2", "a", g2.address);
    let name = fqdn.clone();
    let answer = g1.run(move || dns_query_a(([10, 231, 1, 1], 53).into(), &name));
    assert_eq!(answer, Some(Ipv4Addr::new(10, 231, 1, 3)));
    let host = dns.local_addr();
    let answer = tokio::task::spawn_blocking(move || dns_query_a(host, &fqdn)).await.unwrap();
    assert_eq!(answer, Some(Ipv4Addr::LOCALHOST));
    drop(dns);

    drop((g1, g2, g3));
    for (n, g) in [("a", "g1"), ("a", "g2"), ("b", "g3")] {
        env.mgr.detach(n, g).await.unwrap();
    }
    env.mgr.delete_network("a").await.unwrap();
    env.mgr.delete_network("b").await.unwrap();
    assert_eq!(env.leftovers(), Vec::<String>::new());
}

/// A blocking A query over UDP, a few tries; `None` for no answer.
fn dns_query_a(server: SocketAddr, name: &str) -> Option<Ipv4Addr> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    let bytes = msg.to_vec().ok()?;
    let mut buf = [0u8; 1500];
    for _ in 0..5 {
        sock.send_to(&bytes, server).ok()?;
        if let Ok(n) = sock.recv(&mut buf) {
            let resp = Message::from_vec(&buf[..n]).ok()?;
            return resp.answers.iter().find_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            });
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_persists_exhausts_and_recovery_removes_only_orphans() {
    if !can_run("ipam_persists_exhausts_and_recovery_removes_only_orphans") {
        return;
    }
    let env = Env::new("rec");
    env.mgr.create_network(&net("small", 3, 29)).await.unwrap(); // 5 guest addresses
    let mut taps = Vec::new();
    for i in 0..5 {
        taps.push(env.mgr.attach("small", &format!("g{i}"), true).await.unwrap());
    }
    let err = env.mgr.attach("small", "g5", true).await.unwrap_err();
    assert!(matches!(err, ManagerError::Ipam { .. }), "{err:?}");
    let ns = env.mgr.namespace_of("small");
    let names = links::list(&ns).await.unwrap();
    assert_eq!(names.iter().filter(|n| n.starts_with('t')).count(), 5, "{names:?}");

    // Detach removes the tap and frees the address for the next group.
    let gone = taps.remove(1);
    env.mgr.detach("small", "g1").await.unwrap();
    assert!(!links::list(&ns).await.unwrap().contains(&gone.tap_name));
    drop(gone);

    // A "crash": the manager and the VMM fds are gone; a new manager on the same state dir.
    drop(taps);
    let mgr = env.reopen();
    let again = mgr.attach("small", "g9", true).await.unwrap();
    assert_eq!(again.guest.address, Ipv4Addr::new(10, 231, 3, 3), "g1's released address");
    drop(again);

    // Orphans: a namespace with aci's prefix but no spec goes; one without the prefix stays.
    let orphan = format!("{}orphan", env.prefix);
    let foreign = format!("{}foreign", env.guest_prefix);
    netns::create(&orphan).unwrap();
    netns::create(&foreign).unwrap();
    let report = mgr.recover(&["g0"]).await.unwrap();
    assert_eq!(report.removed_namespaces, vec![orphan.clone()]);
    assert!(netns::exists(&foreign) && netns::exists(&ns));
    let mut released: Vec<String> = report.released_leases.into_iter().map(|(_, g)| g).collect();
    released.sort();
    assert_eq!(released, ["g2", "g3", "g4", "g9"]);
    netns::delete(&foreign).unwrap();

    // A network whose namespace vanished (host reboot) is rebuilt by recovery.
    netns::delete(&ns).unwrap();
    let report = mgr.recover(&["g0"]).await.unwrap();
    assert_eq!(report.rebuilt_networks, vec!["small".to_owned()]);
    assert!(links::list(&ns).await.unwrap().contains(&"br0".to_owned()));
    assert_eq!(aci_net::nft::tables(&ns).unwrap(), vec!["inet aci".to_owned()]);

    mgr.delete_network("small").await.unwrap();
    assert_eq!(env.leftovers(), Vec::<String>::new());
    assert!(!stdout("ip", &["netns", "list"]).contains(&env.prefix));
    assert!(!stdout("nft", &["list", "tables"]).contains("inet aci"), "aci never adds host tables");
    assert!(!stdout("ip", &["-o", "link"]).contains("t0ae703"), "no tap of this test on the host");
}
