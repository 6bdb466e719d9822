//! Muxer tests: real Unix sockets in a temp dir, the guest side played by hand.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use super::*;

const GUEST_CID: u64 = 3;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aci-muxer-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn guest_hdr(op: u16, src_port: u32, dst_port: u32) -> Header {
    Header {
        src_cid: GUEST_CID,
        dst_cid: HOST_CID,
        src_port,
        dst_port,
        type_: TYPE_STREAM,
        op,
        buf_alloc: 1 << 20,
        ..Header::default()
    }
}

/// Polls the muxer until it has a packet for the guest.
fn next_packet(muxer: &mut Muxer) -> Packet {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        muxer.process_events();
        if let Some(pkt) = muxer.next_rx(4096) {
            return pkt;
        }
        assert!(Instant::now() < deadline, "no packet for the guest");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn host_connect_handshake_then_data_both_ways() {
    let dir = temp_dir("host");
    let uds = dir.join("v.sock");
    let mut muxer = Muxer::new(GUEST_CID, &uds).unwrap();
    let mut client = UnixStream::connect(&uds).unwrap();
    client.write_all(b"CONNECT 52\n").unwrap();
    let request = next_packet(&mut muxer);
    assert_eq!((request.hdr.op, request.hdr.dst_port), (op::REQUEST, 52));
    let host_port = request.hdr.src_port;
    muxer.send_to_host(Packet { hdr: guest_hdr(op::RESPONSE, 52, host_port), data: Vec::new() });
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, format!("OK {host_port}\n"));

    client.write_all(b"ping").unwrap();
    let data = next_packet(&mut muxer);
    assert_eq!((data.hdr.op, data.data.as_slice()), (op::RW, &b"ping"[..]));
    let mut pong = guest_hdr(op::RW, 52, host_port);
    pong.len = 4;
    muxer.send_to_host(Packet { hdr: pong, data: b"pong".to_vec() });
    let mut got = [0u8; 4];
    std::io::Read::read_exact(&mut reader, &mut got).unwrap();
    assert_eq!(&got, b"pong");
    drop(muxer);
    assert!(!uds.exists(), "the socket file is removed with the muxer");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn guest_connect_reaches_the_port_listener_or_is_reset() {
    let dir = temp_dir("guest");
    let uds = dir.join("v.sock");
    let mut muxer = Muxer::new(GUEST_CID, &uds).unwrap();
    let listener = UnixListener::bind(dir.join("v.sock_6000")).unwrap();

    muxer.send_to_host(Packet { hdr: guest_hdr(op::REQUEST, 1234, 6000), data: Vec::new() });
    let response = muxer.next_rx(4096).unwrap();
    assert_eq!((response.hdr.op, response.hdr.dst_port, response.hdr.src_port), (op::RESPONSE, 1234, 6000));
    let (mut accepted, _) = listener.accept().unwrap();
    let mut hello = guest_hdr(op::RW, 1234, 6000);
    hello.len = 5;
    muxer.send_to_host(Packet { hdr: hello, data: b"hello".to_vec() });
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut accepted, &mut got).unwrap();
    assert_eq!(&got, b"hello");

    // Nothing listens on port 7000; unknown connections get a reset too.
    muxer.send_to_host(Packet { hdr: guest_hdr(op::REQUEST, 1235, 7000), data: Vec::new() });
    assert_eq!(muxer.next_rx(4096).unwrap().hdr.op, op::RST);
    muxer.send_to_host(Packet { hdr: guest_hdr(op::RW, 1236, 6000), data: Vec::new() });
    assert_eq!(muxer.next_rx(4096).unwrap().hdr.op, op::RST);
    muxer.send_to_host(Packet { hdr: guest_hdr(op::RST, 1237, 6000), data: Vec::new() });
    assert!(muxer.next_rx(4096).is_none(), "a reset is never answered");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_connect_lines_are_dropped() {
    assert_eq!(parse_connect(b"CONNECT 52"), Some(52));
    assert_eq!(parse_connect(b"CONNECT 52\r"), Some(52));
    assert_eq!(parse_connect(b"CONNECT x"), None);
    assert_eq!(parse_connect(b"HELLO 52"), None);
}

#[test]
fn host_connect_to_a_closed_guest_port_ends_with_eof() {
    let dir = temp_dir("refused");
    let uds = dir.join("v.sock");
    let mut muxer = Muxer::new(GUEST_CID, &uds).unwrap();
    let mut client = UnixStream::connect(&uds).unwrap();
    client.write_all(b"CONNECT 99\n").unwrap();
    let request = next_packet(&mut muxer);
    let mut rst = guest_hdr(op::RST, 99, request.hdr.src_port);
    rst.buf_alloc = 0;
    muxer.send_to_host(Packet { hdr: rst, data: Vec::new() });
    assert!(muxer.conns.is_empty());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut client, &mut rest).unwrap();
    assert!(rest.is_empty(), "no OK line, just end of file");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn busy_connections_take_turns_for_guest_buffers() {
    let dir = temp_dir("turns");
    let uds = dir.join("v.sock");
    let mut muxer = Muxer::new(GUEST_CID, &uds).unwrap();
    let a = UnixListener::bind(dir.join("v.sock_1")).unwrap();
    let b = UnixListener::bind(dir.join("v.sock_2")).unwrap();
    let mut accepted = Vec::new();
    for (port, listener) in [(1, &a), (2, &b)] {
        muxer.send_to_host(Packet { hdr: guest_hdr(op::REQUEST, 100 + port, port), data: Vec::new() });
        assert_eq!(muxer.next_rx(4096).unwrap().hdr.op, op::RESPONSE);
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(&[port as u8; 64 << 10]).unwrap();
        accepted.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while seen.len() < 4 && Instant::now() < deadline {
        muxer.process_events();
        if let Some(pkt) = muxer.next_rx(1024) {
            seen.push(pkt.hdr.src_port);
        }
    }
    assert!(seen.contains(&1) && seen.contains(&2), "both streams served: {seen:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
