//! TCP servers (echo, sink, serve) and clients (source, fetch, round trips).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::stats::{mib_per_s, quantile_us, MIB};

/// Transfer chunk size.
const CHUNK: usize = 128 * 1024;
/// Round trips before timing starts (connection set-up, caches).
const WARM_UP: u64 = 10;
/// How long a client waits for the peer before giving up.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Listens on `0.0.0.0:port` and runs `serve` on a thread for every connection.
fn listen(port: u16, name: &'static str, serve: fn(TcpStream) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
    eprintln!("{name}: listening on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{name}: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("{name}: {peer}: {e}");
            }
        });
    }
}

/// `tcp-echo`: every byte read is written back.
pub fn echo(port: u16) -> io::Result<()> {
    listen(port, "tcp-echo", |mut s| {
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    })
}

/// `tcp-sink`: reads to EOF, answers one byte (the sender's end mark), prints the count.
pub fn sink(port: u16) -> io::Result<()> {
    listen(port, "tcp-sink", |mut s| {
        let peer = s.peer_addr()?;
        let started = Instant::now();
        let total = drain(&mut s)?;
        s.write_all(b"k")?;
        let elapsed = started.elapsed();
        println!(
            "tcp-sink: {peer}: {total} bytes in {:.3} s ({:.1} MiB/s)",
            elapsed.as_secs_f64(),
            mib_per_s(total, elapsed)
        );
        Ok(())
    })
}

/// `tcp-serve`: writes `mib` MiB to each connection, then closes it.
pub fn serve(port: u16, mib: u64) -> io::Result<()> {
    // `listen` takes a plain fn; the size travels through a process-wide value.
    SERVE_MIB.store(mib, std::sync::atomic::Ordering::Relaxed);
    listen(port, "tcp-serve", |mut s| {
        let total = SERVE_MIB.load(std::sync::atomic::Ordering::Relaxed) * MIB;
        write_bytes(&mut s, total)?;
        s.shutdown(Shutdown::Write)?;
        // Wait for the reader's close so the kernel does not reset unread data.
        let mut rest = [0u8; 64];
        while s.read(&mut rest)? > 0 {}
        Ok(())
    })
}

static SERVE_MIB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn write_bytes(s: &mut TcpStream, total: u64) -> io::Result<()> {
    let buf = vec![0x5au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Reads `s` to EOF, dropping the data: the byte count.
fn drain(s: &mut TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// `tcp-source`: sends `mib` MiB to a `tcp-sink` and times it up to the sink's answer.
pub fn source(addr: SocketAddr, mib: u64) -> io::Result<()> {
    let started = Instant::now();
    let mut s = connect(addr)?;
    write_bytes(&mut s, mib * MIB)?;
    s.shutdown(Shutdown::Write)?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer)?;
    let elapsed = started.elapsed();
    println!(
        "RESULT tcp-source bytes={} secs={:.6} mib_per_s={:.3}",
        mib * MIB,
        elapsed.as_secs_f64(),
        mib_per_s(mib * MIB, elapsed)
    );
    Ok(())
}

/// `tcp-fetch`: reads a `tcp-serve` stream to EOF and times it.
pub fn fetch(addr: SocketAddr) -> io::Result<()> {
    let started = Instant::now();
    let mut s = connect(addr)?;
    let total = drain(&mut s)?;
    let elapsed = started.elapsed();
    if total == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{addr} sent nothing")));
    }
    println!(
        "RESULT tcp-fetch bytes={total} secs={:.6} mib_per_s={:.3}",
        elapsed.as_secs_f64(),
        mib_per_s(total, elapsed)
    );
    Ok(())
}

/// `tcp-rr`: `count` timed 1-byte request/response exchanges with a `tcp-echo`.
pub fn round_trips(addr: SocketAddr, count: u64) -> io::Result<()> {
    let mut s = connect(addr)?;
    s.set_nodelay(true)?;
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut byte = [0u8; 1];
    for i in 0..WARM_UP + count {
        let started = Instant::now();
        s.write_all(&[i as u8])?;
        s.read_exact(&mut byte)?;
        if byte[0] != i as u8 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{addr} echoed a wrong byte")));
        }
        if i >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    let median = quantile_us(&mut samples, 0.5);
    let p99 = quantile_us(&mut samples, 0.99);
    println!("RESULT tcp-rr count={count} median_us={median:.1} p99_us={p99:.1}");
    Ok(())
}
