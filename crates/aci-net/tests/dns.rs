//! The in-process DNS server on loopback (no root needed): a registered label resolves to the
//! group's published address, unknown names get NXDOMAIN, other zones REFUSED, and a label in use
//! is a conflict.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aci_net::dns::{DnsLabels, DnsServer, LabelError, LabelOwner, LabelScope};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

async fn query(server: SocketAddr, name: &str) -> Message {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut msg = Message::new(42, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = msg.to_vec().unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..5 {
        sock.send_to(&bytes, server).await.unwrap();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            return Message::from_vec(&buf[..n]).unwrap();
        }
    }
    panic!("no DNS answer from {server}");
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers.iter().filter_map(|r| if let RData::A(a) = &r.data { Some(a.0) } else { None }).collect()
}

#[tokio::test]
async fn labels_resolve_unknown_is_nxdomain_and_conflicts_error() {
    let labels = Arc::new(DnsLabels::new("westeurope", "azurecontainer.io"));
    let dns = DnsServer::start(labels.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let owner = LabelOwner { tenant: "t".into(), subscription: "s".into(), resource_group: "rg".into() };
    let published = Ipv4Addr::LOCALHOST;

    let web = labels.register("web", LabelScope::Unsecure, &owner, "g1", published).unwrap();
    assert_eq!(web, "web.westeurope.azurecontainer.io");
    let scoped = labels.register("api", LabelScope::ResourceGroupReuse, &owner, "g2", published).unwrap();
    assert!(scoped.starts_with("api-") && scoped.ends_with(".westeurope.azurecontainer.io"));

    let m = query(dns.local_addr(), &format!("{web}.")).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), vec![published]);
    assert_eq!(a_records(&query(dns.local_addr(), &format!("{scoped}.")).await), vec![published]);

    let m = query(dns.local_addr(), "nope.westeurope.azurecontainer.io.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = query(dns.local_addr(), "example.com.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    let err = labels.register("web", LabelScope::Unsecure, &owner, "g3", published).unwrap_err();
    assert!(matches!(err, LabelError::InUse { ref holder, .. } if holder == "g1"), "{err}");
    // Same owner, same reuse scope: gets its name back once the first group released it.
    labels.release("g2");
    let back = labels.register("api", LabelScope::ResourceGroupReuse, &owner, "g4", published).unwrap();
    assert_eq!(back, scoped);
    labels.release("g1");
    let m = query(dns.local_addr(), &format!("{web}.")).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}
