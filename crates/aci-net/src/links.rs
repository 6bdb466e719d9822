//! Links and addresses inside a namespace, through rtnetlink. Every call runs on a dedicated
//! thread that entered the namespace, with its own single-threaded tokio runtime, so the netlink
//! socket belongs to that namespace.

use std::future::Future;
use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use std::os::fd::AsRawFd;

use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netns::{self, NetnsError};

/// Errors of link operations.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Entering the namespace failed.
    #[error("cannot run netlink requests in the namespace")]
    Namespace(#[source] NetnsError),
    /// Opening the netlink socket or its runtime failed.
    #[error("cannot open a netlink connection")]
    Connect(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("netlink request `{op}` failed")]
    Request {
        /// What was being done.
        op: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link expected to exist was not found.
    #[error("link {0} not found")]
    NotFound(String),
}

/// The uplink's name inside a network namespace (NAT networks only).
pub const UPLINK: &str = "up0";

fn req(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let op = op.into();
    move |source| LinkError::Request { op, source }
}

/// Runs `f` with a netlink handle bound to namespace `ns`, or to the caller's (host) namespace
/// for `None`.
async fn with_handle_in<T, F, Fut>(ns: Option<&str>, f: F) -> Result<T, LinkError>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, LinkError>>,
    T: Send + 'static,
{
    let run = move || {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(LinkError::Connect)?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Connect)?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    };
    match ns {
        Some(ns) => netns::run_in_async(ns, run).await.map_err(LinkError::Namespace)?,
        None => tokio::task::spawn_blocking(run)
            .await
            .map_err(|_| LinkError::Connect(std::io::Error::other("netlink thread panicked")))?,
    }
}

async fn with_handle<T, F, Fut>(ns: &str, f: F) -> Result<T, LinkError>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, LinkError>>,
    T: Send + 'static,
{
    with_handle_in(Some(ns), f).await
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, LinkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(msg.header.index),
        Ok(None) => Err(LinkError::NotFound(name.to_owned())),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
            Err(LinkError::NotFound(name.to_owned()))
        }
        Err(e) => Err(req(format!("get link {name}"))(e)),
    }
}

/// Brings `lo` up and creates bridge `bridge` with `gateway/prefix`, up, in namespace `ns`.
pub async fn create_bridge(ns: &str, bridge: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), LinkError> {
    let bridge = bridge.to_owned();
    with_handle(ns, move |h| async move {
        let lo = index_of(&h, "lo").await?;
        h.link().set(LinkUnspec::new_with_index(lo).up().build()).execute().await.map_err(req("lo up"))?;
        h.link().add(LinkBridge::new(&bridge).build()).execute().await.map_err(req("add bridge"))?;
        let idx = index_of(&h, &bridge).await?;
        h.address().add(idx, gateway.into(), prefix).execute().await.map_err(req("add gateway address"))?;
        h.link().set(LinkUnspec::new_with_index(idx).up().build()).execute().await.map_err(req("bridge up"))
    })
    .await
}

/// Enslaves `port` to `bridge` and brings it up, in namespace `ns`.
pub async fn attach_port(ns: &str, port: &str, bridge: &str) -> Result<(), LinkError> {
    let (port, bridge) = (port.to_owned(), bridge.to_owned());
    with_handle(ns, move |h| async move {
        let br = index_of(&h, &bridge).await?;
        let idx = index_of(&h, &port).await?;
        let msg = LinkUnspec::new_with_index(idx).controller(br).up().build();
        h.link().set(msg).execute().await.map_err(req(format!("attach {port} to {bridge}")))
    })
    .await
}

/// Deletes link `name` in namespace `ns`; a missing link is not an error.
pub async fn delete_link(ns: &str, name: &str) -> Result<(), LinkError> {
    let name = name.to_owned();
    with_handle(ns, move |h| async move {
        match index_of(&h, &name).await {
            Ok(idx) => h.link().del(idx).execute().await.map_err(req(format!("delete {name}"))),
            Err(LinkError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Creates the uplink veth pair: `host_if` (in the caller's namespace, `host_addr/30`, up) and
/// [`UPLINK`] inside `ns` (`ns_addr/30`, up, default route via `host_addr`). Undone on failure.
pub async fn create_uplink(
    ns: &str,
    host_if: &str,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
) -> Result<(), LinkError> {
    let ns_file = std::fs::File::open(netns::path(ns))
        .map_err(|source| LinkError::Namespace(NetnsError::Open { name: ns.to_owned(), source }))?;
    let host = host_if.to_owned();
    let created = with_handle_in(None, move |h| async move {
        h.link().add(LinkVeth::new(&host, UPLINK).build()).execute().await.map_err(req("add veth"))?;
        let peer = index_of(&h, UPLINK).await?;
        let mv = LinkUnspec::new_with_index(peer).setns_by_fd(ns_file.as_raw_fd()).build();
        h.link().set(mv).execute().await.map_err(req("move uplink into namespace"))?;
        let idx = index_of(&h, &host).await?;
        h.address().add(idx, host_addr.into(), 30).execute().await.map_err(req("add uplink address"))?;
        h.link().set(LinkUnspec::new_with_index(idx).up().build()).execute().await.map_err(req("uplink up"))
    })
    .await;
    let configured = match created {
        Ok(()) => {
            with_handle(ns, move |h| async move {
                let idx = index_of(&h, UPLINK).await?;
                h.address().add(idx, ns_addr.into(), 30).execute().await.map_err(req("add address"))?;
                let up = LinkUnspec::new_with_index(idx).up().build();
                h.link().set(up).execute().await.map_err(req("uplink up"))?;
                let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(host_addr).build();
                h.route().add(route).execute().await.map_err(req("add default route"))
            })
            .await
        }
        Err(e) => Err(e),
    };
    if configured.is_err() {
        let _ = delete_host_link(host_if).await;
    }
    configured
}

/// Deletes link `name` in the caller's (host) namespace; a missing link is not an error.
pub async fn delete_host_link(name: &str) -> Result<(), LinkError> {
    let name = name.to_owned();
    with_handle_in(None, move |h| async move {
        match index_of(&h, &name).await {
            Ok(idx) => h.link().del(idx).execute().await.map_err(req(format!("delete {name}"))),
            Err(LinkError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Names of the links in namespace `ns`.
pub async fn list(ns: &str) -> Result<Vec<String>, LinkError> {
    use rtnetlink::packet_route::link::LinkAttribute;
    with_handle(ns, move |h| async move {
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(req("list links"))? {
            for attr in msg.attributes {
                if let LinkAttribute::IfName(n) = attr {
                    out.push(n);
                }
            }
        }
        Ok(out)
    })
    .await
}
