//! UDP: an echo server on any number of ports, and timed round trips against it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::stats::quantile_us;

/// How long a round trip waits for its answer before counting the datagram lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Round trips before timing starts.
const WARM_UP: u32 = 10;

/// `udp-echo`: every datagram on any of `ports` goes back to its sender.
pub fn echo(ports: &[u16]) -> io::Result<()> {
    let mut sockets = Vec::new();
    for &port in ports {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
        eprintln!("udp-echo: listening on {}", s.local_addr()?);
        sockets.push(s);
    }
    let threads: Vec<_> = sockets.into_iter().map(|s| std::thread::spawn(move || serve(&s))).collect();
    for t in threads {
        match t.join() {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::other("an echo thread panicked")),
        }
    }
    Ok(())
}

fn serve(s: &UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        if let Err(e) = s.send_to(&buf[..n], peer) {
            eprintln!("udp-echo: reply to {peer}: {e}");
        }
    }
}

/// `udp-rr`: `count` timed request/response exchanges (a 4-byte sequence number each) with a
/// `udp-echo`; a datagram without an answer within a second counts as lost.
pub fn round_trips(addr: SocketAddr, count: u64) -> io::Result<()> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.connect(addr)?;
    s.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut samples = Vec::new();
    let mut lost = 0u64;
    let mut buf = [0u8; 64];
    let total = u64::from(WARM_UP) + count;
    for seq in 0..total {
        let tag = (seq as u32).to_be_bytes();
        let started = Instant::now();
        s.send(&tag)?;
        let answered = loop {
            match s.recv(&mut buf) {
                Ok(4) if buf[..4] == tag => break true,
                Ok(_) => continue, // a late answer to an earlier datagram
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    break false
                }
                Err(e) => return Err(e),
            }
        };
        if !answered {
            lost += 1;
        } else if seq >= u64::from(WARM_UP) {
            samples.push(started.elapsed());
        }
    }
    if samples.is_empty() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {addr}")));
    }
    let median = quantile_us(&mut samples, 0.5);
    let p99 = quantile_us(&mut samples, 0.99);
    println!("RESULT udp-rr count={count} lost={lost} median_us={median:.1} p99_us={p99:.1}");
    Ok(())
}
