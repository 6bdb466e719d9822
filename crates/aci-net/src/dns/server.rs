//! The in-process DNS server (hickory-server) answering A queries for registered labels:
//! NXDOMAIN for unknown names under `<region>.<zone>`, REFUSED for other zones.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;

use super::labels::DnsLabels;

/// TTL of answers, seconds.
const TTL: u32 = 30;

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsServerError {
    /// Binding the listening socket failed.
    #[error("cannot bind the DNS server to {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Handing a socket to the server failed.
    #[error("cannot register a DNS socket")]
    Register(#[source] std::io::Error),
}

struct LabelHandler {
    labels: Arc<DnsLabels>,
    /// The network whose guests this handler answers (`None`: the host).
    network: Option<String>,
}

#[async_trait::async_trait]
impl RequestHandler for LabelHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let fail = |code| {
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = code;
            m
        };
        let Ok(info) = request.request_info() else {
            let m = fail(ResponseCode::FormErr);
            return send(&mut response, builder.build_no_records(m), m).await;
        };
        let name = info.query.name().to_string();
        if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
            let m = fail(ResponseCode::NotImp);
            return send(&mut response, builder.build_no_records(m), m).await;
        }
        if !self.labels.in_zone(&name) {
            let m = fail(ResponseCode::Refused);
            return send(&mut response, builder.build_no_records(m), m).await;
        }
        let Some(address) = self.labels.lookup_from(&name, self.network.as_deref()) else {
            let mut m = fail(ResponseCode::NXDomain);
            m.authoritative = true;
            return send(&mut response, builder.build_no_records(m), m).await;
        };
        let mut m = Metadata::response_from_request(&request.metadata);
        m.authoritative = true;
        let answers: Vec<Record> = if info.query.query_type() == RecordType::A {
            vec![Record::from_rdata(info.query.original().name().clone(), TTL, RData::A(A(address)))]
        } else {
            Vec::new() // NODATA: the name exists, only A records are served.
        };
        let msg = builder.build(m, answers.iter(), [], [], []);
        send(&mut response, msg, m).await
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    fallback: Metadata,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "DNS response not sent");
            let mut m = fallback;
            m.response_code = ResponseCode::ServFail;
            hickory_server::proto::op::Header { metadata: m, counts: Default::default() }.into()
        }
    }
}

/// A running DNS server over a shared [`DnsLabels`] table. Stops when dropped.
pub struct DnsServer {
    labels: Arc<DnsLabels>,
    server: Mutex<Server<LabelHandler>>,
    /// One server per network socket, each answering with that network's view.
    networks: Mutex<Vec<Server<LabelHandler>>>,
    local: SocketAddr,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("local", &self.local).finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Starts serving `labels` over UDP and TCP at `addr` (port 0 picks one; see
    /// [`DnsServer::local_addr`]). Needs a tokio runtime.
    pub async fn start(labels: Arc<DnsLabels>, addr: SocketAddr) -> Result<Self, DnsServerError> {
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|source| DnsServerError::Bind { addr, source })?;
        let local = udp.local_addr().map_err(|source| DnsServerError::Bind { addr, source })?;
        let tcp = tokio::net::TcpListener::bind(local)
            .await
            .map_err(|source| DnsServerError::Bind { addr: local, source })?;
        let mut server = Server::new(LabelHandler { labels: labels.clone(), network: None });
        server.register_socket(udp);
        server.register_listener(tcp, std::time::Duration::from_secs(5), 4096);
        Ok(Self { labels, server: Mutex::new(server), networks: Mutex::new(Vec::new()), local })
    }

    /// Also answers the guests of `network` on `socket` (from
    /// [`crate::NetworkManager::dns_socket`], bound to the gateway inside the network's
    /// namespace): groups attached to that network resolve to their private address (see
    /// [`DnsLabels::set_private`]). The socket must be non-blocking.
    pub fn add_network_socket(
        &self,
        socket: std::net::UdpSocket,
        network: &str,
    ) -> Result<(), DnsServerError> {
        let sock = tokio::net::UdpSocket::from_std(socket).map_err(DnsServerError::Register)?;
        let mut server =
            Server::new(LabelHandler { labels: self.labels.clone(), network: Some(network.to_owned()) });
        server.register_socket(sock);
        self.networks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(server);
        Ok(())
    }

    /// The UDP/TCP address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The label table served.
    pub fn labels(&self) -> &Arc<DnsLabels> {
        &self.labels
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let main = self.server.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        main.shutdown_token().cancel();
        let nets = self.networks.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in nets.iter() {
            s.shutdown_token().cancel();
        }
    }
}
