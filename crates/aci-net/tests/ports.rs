//! Published ports (root): declared TCP and UDP ports reach a fake guest from 127.0.0.1,
//! undeclared ones do not, and a taken host port fails the publish with nothing left bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use aci_net::{ManagerError, NetworkConfig, PortError, PortSpec, Protocol};
use common::{can_run, free_port, Env, FakeGuest};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn tcp(port: u16) -> PortSpec {
    PortSpec { protocol: Protocol::Tcp, port }
}

fn udp(port: u16) -> PortSpec {
    PortSpec { protocol: Protocol::Udp, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_reach_the_guest_and_only_declared_ones() {
    if !can_run("published_ports_reach_the_guest_and_only_declared_ones") {
        return;
    }
    let env = Env::new("pub");
    let cfg = NetworkConfig {
        name: "p".into(),
        subnet: Ipv4Addr::new(10, 231, 4, 0),
        prefix: 24,
        outbound_nat: false,
    };
    env.mgr.create_network(&cfg).await.unwrap();
    let att = env.mgr.attach("p", "g1", false).await.unwrap();
    let ip = att.guest.address;
    let guest = FakeGuest::start(&env, "g1", att);
    let (tport, uport, undeclared) = (free_port(true), free_port(false), free_port(true));

    // The fake guest: a TCP greeter on tport and on `undeclared`, a UDP echo on uport.
    let (tl, ul, xl) = guest.run(move || {
        (
            TcpListener::bind(("0.0.0.0", tport)).unwrap(),
            UdpSocket::bind(("0.0.0.0", uport)).unwrap(),
            TcpListener::bind(("0.0.0.0", undeclared)).unwrap(),
        )
    });
    let tcp_server = std::thread::spawn(move || {
        let (mut s, _) = tl.accept().unwrap();
        s.write_all(b"tcp ok").unwrap();
    });
    let udp_server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = ul.recv_from(&mut buf).unwrap();
        ul.send_to(&buf[..n], from).unwrap();
    });

    let published = env.mgr.publish("p", "g1", ip, LOCAL, &[tcp(tport), udp(uport)]).await.unwrap();
    assert_eq!(published.addresses.len(), 2);

    let got = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, tport)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    })
    .await
    .unwrap();
    assert_eq!(got, "tcp ok");
    tcp_server.join().unwrap();

    let echoed = tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..10 {
            s.send_to(b"udp ok", (Ipv4Addr::LOCALHOST, uport)).unwrap();
            if let Ok(n) = s.recv(&mut buf) {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        String::new()
    })
    .await
    .unwrap();
    assert_eq!(echoed, "udp ok");
    udp_server.join().unwrap();

    // The guest listens on `undeclared` too, but the host does not forward it.
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, undeclared));
    assert!(TcpStream::connect_timeout(&to, Duration::from_millis(500)).is_err());
    drop(xl);

    // Closing frees the host ports.
    drop(published);
    tokio::time::sleep(Duration::from_millis(50)).await;
    TcpListener::bind((Ipv4Addr::LOCALHOST, tport)).unwrap();
    drop(guest);
    env.mgr.detach("p", "g1").await.unwrap();
    env.mgr.delete_network("p").await.unwrap();
    assert_eq!(env.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_publish_and_leaves_nothing_bound() {
    if !can_run("a_taken_port_fails_publish_and_leaves_nothing_bound") {
        return;
    }
    let env = Env::new("cfl");
    let cfg = NetworkConfig {
        name: "c".into(),
        subnet: Ipv4Addr::new(10, 231, 5, 0),
        prefix: 24,
        outbound_nat: false,
    };
    env.mgr.create_network(&cfg).await.unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let (first, udp_first) = (free_port(true), free_port(false));
    let ip = Ipv4Addr::new(10, 231, 5, 2);
    let specs = [tcp(first), udp(udp_first), tcp(taken_port)];
    let err = env.mgr.publish("c", "g1", ip, LOCAL, &specs).await.unwrap_err();
    match &err {
        ManagerError::Publish { source: PortError::PortInUse { port, protocol, .. }, .. } => {
            assert_eq!((*port, *protocol), (taken_port, Protocol::Tcp));
        }
        other => panic!("expected PortInUse, got {other:?}"),
    }
    assert!(err.to_string().contains("g1"));
    // The ports bound before the failure were released.
    TcpListener::bind((Ipv4Addr::LOCALHOST, first)).unwrap();
    UdpSocket::bind((Ipv4Addr::LOCALHOST, udp_first)).unwrap();
    env.mgr.delete_network("c").await.unwrap();
    assert_eq!(env.leftovers(), Vec::<String>::new());
}
