//! Connection state machine and credit tests, over a Unix socket pair.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::*;

const GUEST_CID: u64 = 3;

fn guest_pkt(op: u16, data: &[u8], buf_alloc: u32, fwd_cnt: u32) -> Packet {
    let hdr = Header {
        src_cid: GUEST_CID,
        dst_cid: HOST_CID,
        src_port: 1000,
        dst_port: 5000,
        len: data.len() as u32,
        type_: TYPE_STREAM,
        op,
        flags: 0,
        buf_alloc,
        fwd_cnt,
    };
    Packet { hdr, data: data.to_vec() }
}

fn pair() -> (UnixStream, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    (ours, theirs)
}

fn established(buf_alloc: u32) -> (Conn<UnixStream>, UnixStream) {
    let (ours, theirs) = pair();
    let request = guest_pkt(op::REQUEST, &[], buf_alloc, 0);
    let mut conn = Conn::guest_initiated(ours, GUEST_CID, &request.hdr);
    let response = conn.next_rx(4096).unwrap();
    assert_eq!(response.hdr.op, op::RESPONSE);
    assert_eq!((response.hdr.src_port, response.hdr.dst_port), (5000, 1000));
    assert_eq!(response.hdr.buf_alloc, CONN_BUF_SIZE);
    (conn, theirs)
}

#[test]
fn host_initiated_connection_answers_ok_after_the_guest_response() {
    let (ours, mut theirs) = pair();
    let mut conn = Conn::host_initiated(ours, GUEST_CID, 1 << 30, 52);
    let request = conn.next_rx(4096).unwrap();
    assert_eq!(request.hdr.op, op::REQUEST);
    assert_eq!((request.hdr.dst_cid, request.hdr.dst_port), (GUEST_CID, 52));
    let mut response = guest_pkt(op::RESPONSE, &[], 4096, 0);
    response.hdr.src_port = 52;
    conn.on_guest_packet(response);
    assert_eq!(conn.state(), State::Established);
    let mut ok = [0u8; 14];
    theirs.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK 1073741824\n");
}

#[test]
fn guest_data_reaches_the_host_and_credit_updates_follow() {
    let (mut conn, mut theirs) = established(4096);
    let chunk = vec![7u8; 32 << 10];
    conn.on_guest_packet(guest_pkt(op::RW, &chunk, 4096, 0));
    assert!(!conn.wants_rx(), "below the threshold no update is owed");
    conn.on_guest_packet(guest_pkt(op::RW, &chunk, 4096, 0));
    let update = conn.next_rx(4096).unwrap();
    assert_eq!(update.hdr.op, op::CREDIT_UPDATE);
    assert_eq!(update.hdr.fwd_cnt, 64 << 10);
    let mut got = vec![0u8; 64 << 10];
    theirs.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|b| *b == 7));
    // A credit request is answered even below the threshold.
    conn.on_guest_packet(guest_pkt(op::CREDIT_REQUEST, &[], 4096, 0));
    assert_eq!(conn.next_rx(4096).unwrap().hdr.op, op::CREDIT_UPDATE);
}

#[test]
fn data_the_host_cannot_take_yet_is_buffered_not_lost() {
    let (mut conn, mut theirs) = established(4096);
    // Fill the socket until the host side stops taking bytes, in credit-sized packets.
    let mut sent = Vec::new();
    let mut i = 0u32;
    while sent.len() < CONN_BUF_SIZE as usize * 3 / 4 {
        let chunk: Vec<u8> = (0..4096u32).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect();
        conn.on_guest_packet(guest_pkt(op::RW, &chunk, 4096, 0));
        sent.extend_from_slice(&chunk);
        i += 1;
    }
    assert_eq!(conn.state(), State::Established);
    let mut got = vec![0u8; sent.len()];
    let reader = std::thread::spawn(move || {
        theirs.read_exact(&mut got).unwrap();
        got
    });
    for _ in 0..1000 {
        conn.on_host_writable();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(reader.join().unwrap(), sent);
}

#[test]
fn host_data_respects_the_guest_credit() {
    let (mut conn, mut theirs) = established(1000);
    theirs.write_all(&[1u8; 3000]).unwrap();
    conn.on_host_readable();
    let first = conn.next_rx(600).unwrap();
    assert_eq!((first.hdr.op, first.data.len()), (op::RW, 600));
    let second = conn.next_rx(4096).unwrap();
    assert_eq!(second.data.len(), 400, "only the guest's remaining credit");
    assert_eq!(conn.peer_credit(), 0);
    assert!(!conn.wants_rx());
    // The guest consumed 1000 bytes: 1000 more may go.
    conn.on_guest_packet(guest_pkt(op::CREDIT_UPDATE, &[], 1000, 1000));
    assert!(conn.wants_rx());
    assert_eq!(conn.next_rx(4096).unwrap().data.len(), 1000);
}

#[test]
fn host_eof_shuts_down_and_guest_shutdown_closes_with_reset() {
    let (mut conn, theirs) = established(4096);
    drop(theirs);
    conn.on_host_readable();
    let shutdown = conn.next_rx(4096).unwrap();
    assert_eq!((shutdown.hdr.op, shutdown.hdr.flags), (op::SHUTDOWN, SHUTDOWN_SEND));
    let mut bye = guest_pkt(op::SHUTDOWN, &[], 4096, 0);
    bye.hdr.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
    conn.on_guest_packet(bye);
    assert_eq!(conn.next_rx(4096).unwrap().hdr.op, op::RST);
    assert!(conn.is_done());
}

#[test]
fn guest_reset_closes_without_reply() {
    let (mut conn, _theirs) = established(4096);
    conn.on_guest_packet(guest_pkt(op::RST, &[], 0, 0));
    assert!(conn.is_done());
    assert!(conn.next_rx(4096).is_none());
}
