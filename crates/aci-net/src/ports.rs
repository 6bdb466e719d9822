//! Published ports: a userspace proxy in the host process. Host-side sockets are bound in the
//! caller's namespace at `<bind>:<port>`; for each TCP connection (or UDP peer) a socket is
//! created inside the network's namespace and connected to `<group ip>:<port>`. Only declared
//! ports are bound, so nothing else is reachable. All listeners are bound before any proxy task
//! starts: a port already taken fails the whole publish and leaves nothing bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::netns::{self, NetnsError};

/// How long a UDP peer's mapping lives without replies.
const UDP_IDLE: Duration = Duration::from_secs(60);
/// How long connecting to the guest may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One declared port (`ipAddress.ports[]`): published on the host at the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// Protocol.
    pub protocol: Protocol,
    /// Port number, on the host and in the guest.
    pub port: u16,
}

/// Errors of publishing.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The host port is already taken.
    #[error("{protocol:?} port {bind}:{port} is already in use on the host")]
    PortInUse {
        /// Bind address.
        bind: IpAddr,
        /// Port.
        port: u16,
        /// Protocol.
        protocol: Protocol,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Binding the host port failed for another reason.
    #[error("cannot bind {protocol:?} port {bind}:{port}")]
    Bind {
        /// Bind address.
        bind: IpAddr,
        /// Port.
        port: u16,
        /// Protocol.
        protocol: Protocol,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

enum Bound {
    Tcp(TcpListener, u16),
    Udp(UdpSocket, u16),
}

/// The running proxies of one group; dropping it (or [`PublishedPorts::close`]) stops them and
/// frees the host ports.
#[derive(Debug)]
pub struct PublishedPorts {
    tasks: Vec<JoinHandle<()>>,
    /// Host addresses actually bound.
    pub addresses: Vec<(Protocol, SocketAddr)>,
}

impl PublishedPorts {
    /// Stops the proxies.
    pub fn close(self) {}
}

impl Drop for PublishedPorts {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds every spec at `bind` and starts proxies into namespace `ns` towards `group_ip`.
pub async fn publish(
    ns: &str,
    group_ip: Ipv4Addr,
    bind: IpAddr,
    specs: &[PortSpec],
) -> Result<PublishedPorts, PortError> {
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let addr = SocketAddr::new(bind, spec.port);
        let res = match spec.protocol {
            Protocol::Tcp => TcpListener::bind(addr).await.map(|l| Bound::Tcp(l, spec.port)),
            Protocol::Udp => UdpSocket::bind(addr).await.map(|s| Bound::Udp(s, spec.port)),
        };
        match res {
            Ok(b) => bound.push(b),
            Err(source) => {
                let (port, protocol) = (spec.port, spec.protocol);
                return Err(if source.kind() == std::io::ErrorKind::AddrInUse {
                    PortError::PortInUse { bind, port, protocol, source }
                } else {
                    PortError::Bind { bind, port, protocol, source }
                });
            } // `bound` drops here: every earlier listener is closed.
        }
    }
    let mut out = PublishedPorts { tasks: Vec::new(), addresses: Vec::new() };
    for b in bound {
        let ns = ns.to_owned();
        match b {
            Bound::Tcp(l, port) => {
                if let Ok(a) = l.local_addr() {
                    out.addresses.push((Protocol::Tcp, a));
                }
                out.tasks.push(tokio::spawn(serve_tcp(l, ns, SocketAddr::new(group_ip.into(), port))));
            }
            Bound::Udp(s, port) => {
                if let Ok(a) = s.local_addr() {
                    out.addresses.push((Protocol::Udp, a));
                }
                out.tasks.push(tokio::spawn(serve_udp(s, ns, SocketAddr::new(group_ip.into(), port))));
            }
        }
    }
    Ok(out)
}

/// Connects a TCP socket to `target` from inside namespace `ns`.
async fn connect_in(ns: &str, target: SocketAddr) -> Result<TcpStream, NetnsError> {
    let ns_name = ns.to_owned();
    let std_stream = netns::run_in_async(ns, move || {
        let s = std::net::TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)?;
        s.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(s)
    })
    .await?
    .map_err(|source| NetnsError::Enter { name: ns_name.clone(), source })?;
    TcpStream::from_std(std_stream).map_err(|source| NetnsError::Enter { name: ns_name, source })
}

async fn serve_tcp(listener: TcpListener, ns: String, target: SocketAddr) {
    let mut conns = JoinSet::new(); // aborted with this task
    loop {
        let Ok((mut client, peer)) = listener.accept().await else {
            // e.g. EMFILE: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ns = ns.clone();
        conns.spawn(async move {
            match connect_in(&ns, target).await {
                Ok(mut upstream) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => {
                    tracing::debug!(%peer, %target, error = %e, "published port: guest unreachable")
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

type Peers = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

async fn serve_udp(host: UdpSocket, ns: String, target: SocketAddr) {
    let host = Arc::new(host);
    let peers: Peers = Arc::default();
    let mut relays = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = host.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let existing = peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&peer).cloned();
        let inner = match existing {
            Some(s) => s,
            None => {
                let Ok(s) = udp_in(&ns, target).await else {
                    continue;
                };
                let s = Arc::new(s);
                peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(peer, s.clone());
                relays.spawn(relay_back(s.clone(), host.clone(), peer, peers.clone()));
                s
            }
        };
        let _ = inner.send(buf.get(..n).unwrap_or_default()).await;
        while relays.try_join_next().is_some() {}
    }
}

/// A UDP socket created inside `ns`, connected to `target`.
async fn udp_in(ns: &str, target: SocketAddr) -> Result<UdpSocket, std::io::Error> {
    let std_sock = netns::run_in_async(ns, move || {
        let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.connect(target)?;
        s.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(s)
    })
    .await
    .map_err(std::io::Error::other)??;
    UdpSocket::from_std(std_sock)
}

async fn relay_back(inner: Arc<UdpSocket>, host: Arc<UdpSocket>, peer: SocketAddr, peers: Peers) {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, inner.recv(&mut buf)).await {
        let _ = host.send_to(buf.get(..n).unwrap_or_default(), peer).await;
    }
    peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&peer);
}
