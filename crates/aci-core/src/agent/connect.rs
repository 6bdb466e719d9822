//! The vsock-over-Unix-socket handshake, with retries until the agent listens.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aci_proto::channel::{AgentInfo, Channel, ChannelError};
use aci_proto::AGENT_VSOCK_PORT;
use thiserror::Error;

/// How long a read on an agent connection may block: a call whose reply takes longer fails
/// instead of hanging the caller.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting to the agent failed.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The agent did not accept a connection before the deadline.
    #[error("the agent did not answer on vsock port {port} via {} within {waited:?} (last error: {last})", uds.display())]
    Timeout {
        /// The VMM's vsock Unix socket.
        uds: PathBuf,
        /// The guest port.
        port: u32,
        /// How long we tried.
        waited: Duration,
        /// What the last attempt said.
        last: String,
    },
    /// The connection was made but the agent refused or failed the hello.
    #[error("the agent's hello failed")]
    Hello(#[source] ChannelError),
}

/// Connects to the agent through the VMM's vsock socket `uds`, retrying until `timeout`,
/// and exchanges hellos (a protocol version mismatch is an error naming both versions).
pub fn connect(uds: &Path, timeout: Duration) -> Result<(Channel<UnixStream>, AgentInfo), ConnectError> {
    let started = Instant::now();
    let mut last;
    loop {
        match handshake(uds, AGENT_VSOCK_PORT) {
            Ok(stream) => {
                let mut channel = Channel::new(stream);
                match channel.hello(env!("CARGO_PKG_VERSION")) {
                    Ok(info) => return Ok((channel, info)),
                    // The guest accepted and closed (agent restarting): try again.
                    Err(ChannelError::Frame(err)) => last = err.to_string(),
                    Err(err) => return Err(ConnectError::Hello(err)),
                }
            }
            Err(err) => last = err,
        }
        if started.elapsed() >= timeout {
            return Err(ConnectError::Timeout {
                uds: uds.to_path_buf(),
                port: AGENT_VSOCK_PORT,
                waited: started.elapsed(),
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One attempt: connect, `CONNECT <port>`, expect `OK <n>`.
fn handshake(uds: &Path, port: u32) -> Result<UnixStream, String> {
    let mut stream = UnixStream::connect(uds).map_err(|e| format!("connecting to {}: {e}", uds.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream.write_all(format!("CONNECT {port}\n").as_bytes()).map_err(|e| format!("sending CONNECT: {e}"))?;
    let mut line = String::new();
    // Read byte-wise up to the newline, so no byte of the agent's stream is consumed here.
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(format!("the VMM closed the connection after CONNECT {port} (nobody listening?)"))
            }
            Ok(_) => line.push(char::from(byte[0])),
            Err(e) => return Err(format!("reading the CONNECT answer: {e}")),
        }
        if line.len() > 64 {
            return Err(format!("unexpected CONNECT answer {line:?}"));
        }
    }
    if !line.starts_with("OK ") {
        return Err(format!("unexpected CONNECT answer {:?}", line.trim_end()));
    }
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
    Ok(stream)
}
