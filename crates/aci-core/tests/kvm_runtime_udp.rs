//! KVM tier: a published UDP port with a real guest. The group runs the network test image
//! (busybox + the static `aci-nettool`): `udp-echo` on a published UDP port and on a second
//! port that is not declared, `tcp-echo` on a published TCP port. Datagrams sent from the
//! host to the published address come back unchanged; the undeclared port (which answers
//! inside the guest) gets nothing from the host; TCP echoes through the same image; and the
//! tool's own round-trip clients, run on the host, get answers through both ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net_support;
mod runtime_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::runtime::{ExecRequest, GroupState};
use aci_core::spec::{Container, ContainerGroup, Port};
use aci_testkit::{nettool_binary, nettool_image, Registry};
use net_support::{free_port, free_udp_port, Cleanup};
use runtime_support::{state_dir, BOOT_WAIT};

/// A UDP socket on the host connected to `127.0.0.1:port`, with a `wait` reply timeout.
fn udp_client(port: u16, wait: Duration) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s
}

/// Sends `payload` (up to `tries` times, a second apart) and returns the first answer.
fn udp_exchange(s: &UdpSocket, payload: &[u8], tries: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let mut last = std::io::Error::from(ErrorKind::TimedOut);
    for _ in 0..tries {
        s.send(payload)?;
        match s.recv(&mut buf) {
            Ok(n) => return Ok(buf[..n].to_vec()),
            // Refused: an ICMP port-unreachable from loopback (nothing bound there yet).
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::ConnectionRefused
                ) =>
            {
                last = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Runs the host-side `aci-nettool` with `args`; its stdout, or a panic with its output.
fn nettool_on_host(args: &[&str]) -> String {
    let out = Command::new(nettool_binary()).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "aci-nettool {args:?} on the host: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest on a real network; run by `cargo xtask test`"]
async fn a_published_udp_port_echoes_and_an_undeclared_one_gets_nothing() {
    let test = "a_published_udp_port_echoes_and_an_undeclared_one_gets_nothing";
    if !net_support::gate(test) {
        return;
    }
    let reg = Registry::start();
    nettool_image(&reg, "nettool:1");
    let image = format!("{}/nettool:1", reg.host());
    let state = state_dir("udp");
    let prefix = net_support::prefix("udp");
    let _cleanup = Cleanup(prefix.clone());
    let rt = net_support::runtime(
        &reg.host(),
        state.path(),
        net_support::settings(state.path(), &prefix, 93, false),
    );

    let udp = free_udp_port();
    let hidden = loop {
        let p = free_udp_port();
        if p != udp {
            break p;
        }
    };
    let tcp = free_port();
    let (udp_s, hidden_s, tcp_s) = (udp.to_string(), hidden.to_string(), tcp.to_string());
    let group = ContainerGroup::builder("nettool")
        .container(
            Container::new("udp", &image)
                .command(["/bin/aci-nettool", "udp-echo", &udp_s, &hidden_s])
                .udp_port(udp)
                .cpu(0.5)
                .memory_gb(0.25),
        )
        .container(
            Container::new("tcp", &image)
                .command(["/bin/aci-nettool", "tcp-echo", &tcp_s])
                .port(tcp)
                .cpu(0.5)
                .memory_gb(0.25),
        )
        .published(Port::udp(udp))
        .published(Port::tcp(tcp))
        .build()
        .unwrap();
    let status = runtime_support::create(&rt, group).await;
    assert_eq!(status.state, GroupState::Running);
    let mut published = status.published.clone();
    published.sort();
    let mut expected = vec![format!("127.0.0.1:{udp}"), format!("127.0.0.1:{tcp}")];
    expected.sort();
    assert_eq!(published, expected, "{status:?}");
    println!("udp: group {:?}, published {:?}", status.ip, status.published);

    // Host → published UDP port → guest's udp-echo and back (the server starts
    // asynchronously: the first exchange is retried until the boot wait is over).
    let first = tokio::task::spawn_blocking(move || {
        let s = udp_client(udp, Duration::from_secs(1));
        let started = Instant::now();
        let answer = udp_exchange(&s, b"hello over udp", BOOT_WAIT.as_secs() as u32);
        (answer.map(|a| (a, started.elapsed())), s)
    })
    .await
    .unwrap();
    let (answer, s) = first;
    let (answer, took) = answer.unwrap_or_else(|e| {
        panic!("no UDP echo through 127.0.0.1:{udp}: {e}\n{}", runtime_support::console(&rt, "nettool"))
    });
    assert_eq!(answer, b"hello over udp");
    println!("udp: first echo after {took:?}");
    // Datagrams of several sizes (one beyond the guest's 1500-byte MTU) come back unchanged.
    tokio::task::spawn_blocking(move || {
        for (i, size) in [1usize, 512, 1472, 4000, 9000].into_iter().enumerate() {
            let payload: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
            let echoed =
                udp_exchange(&s, &payload, 3).unwrap_or_else(|e| panic!("{size}-byte datagram: {e}"));
            assert_eq!(echoed, payload, "{size}-byte datagram came back changed");
        }
    })
    .await
    .unwrap();

    // The undeclared port answers inside the guest, so silence on the host is the network's.
    let inside = rt
        .exec(
            "nettool",
            "udp",
            ExecRequest::new(["/bin/aci-nettool", "udp-rr", &format!("127.0.0.1:{hidden}"), "5"]),
        )
        .await
        .unwrap();
    assert_eq!(inside.exit_code, 0, "udp-rr to the undeclared port inside the guest: {inside:?}");
    assert!(inside.stdout_text().contains("RESULT udp-rr"), "{}", inside.stdout_text());
    let silent = tokio::task::spawn_blocking(move || {
        udp_exchange(&udp_client(hidden, Duration::from_secs(2)), b"anyone there?", 3)
    })
    .await
    .unwrap();
    assert!(silent.is_err(), "the undeclared UDP port {hidden} answered on the host: {silent:?}");

    // TCP through the same image: bytes come back through the published port.
    let echoed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, tcp))?;
        c.set_read_timeout(Some(Duration::from_secs(20)))?;
        c.write_all(b"hello over tcp")?;
        let mut got = vec![0u8; 14];
        c.read_exact(&mut got)?;
        Ok(got)
    })
    .await
    .unwrap();
    assert_eq!(echoed.unwrap(), b"hello over tcp");

    // The tool's clients, on the host, against the guest's servers.
    let udp_addr = format!("127.0.0.1:{udp}");
    let tcp_addr = format!("127.0.0.1:{tcp}");
    let (u, t) = tokio::task::spawn_blocking(move || {
        (nettool_on_host(&["udp-rr", &udp_addr, "50"]), nettool_on_host(&["tcp-rr", &tcp_addr, "50"]))
    })
    .await
    .unwrap();
    assert!(u.contains("RESULT udp-rr count=50") && t.contains("RESULT tcp-rr count=50"), "{u}\n{t}");
    println!("udp: host round trips through the published ports:\n{}\n{}", u.trim(), t.trim());

    // Stop closes the published UDP port: it can be bound again.
    rt.stop("nettool").await.unwrap();
    let freed_by = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(("127.0.0.1", udp)).is_err() {
        assert!(Instant::now() < freed_by, "UDP port {udp} still bound 5 s after stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
