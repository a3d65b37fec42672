//! Attaching to a running container: the monitor listens on an abstract
//! unix socket (`bosun-cri-attach-<id>`) and, besides writing the log,
//! copies every chunk of the container's stdout/stderr to each connected
//! client; clients send stdin, which reaches the container when it was
//! created with `stdin: true` (its stdin pipe, or its pty master with
//! `tty: true`), and terminal sizes, set on the pty master. Frames are
//! `[channel u8][length u32 BE][data]` with the channel numbers of the
//! Kubernetes channel protocol (0 stdin, 1 stdout, 2 stderr, 4 resize as
//! rows u16 BE + cols u16 BE, 255 stdin EOF). With `stdin_once` the first
//! session that wrote stdin closes the pipe when it ends (as containerd,
//! a pty stays open: there is no half-close of a terminal).

use crate::error::{io, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted.
const MAX_FRAME: usize = 1 << 20;

/// The abstract socket name of container `id`'s attach endpoint.
pub fn socket_name(id: &str) -> String {
    format!("bosun-cri-attach-{id}")
}

/// The clients attached to a monitor, fed by its output pumps.
#[derive(Clone, Default)]
pub struct Clients(Arc<Mutex<Vec<UnixStream>>>);

impl Clients {
    /// Copies a chunk of output to every client; drops clients that fail.
    pub fn send(&self, chan: u8, data: &[u8]) {
        let Ok(mut list) = self.0.lock() else {
            return;
        };
        if list.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(5 + data.len());
        frame.push(chan);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        list.retain_mut(|c| c.write_all(&frame).is_ok());
    }

    /// Disconnects everyone (the container ended).
    pub fn close(&self) {
        if let Ok(mut list) = self.0.lock() {
            for c in list.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// The container's stdin (pipe or pty master), shared by attach clients.
pub type Stdin = Arc<Mutex<Option<File>>>;

/// What attach clients reach in a monitor.
#[derive(Clone, Default)]
pub struct Endpoint {
    pub clients: Clients,
    pub stdin: Stdin,
    /// The pty master, for resizes (`tty` containers).
    pub pty: Option<Arc<File>>,
    pub stdin_once: bool,
}

/// Serves the attach socket of container `id` in a background thread.
pub fn serve(id: &str, ep: Endpoint) -> Result<()> {
    let name = socket_name(id);
    let addr =
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("name attach socket", &name))?;
    let listener = UnixListener::bind_addr(&addr).map_err(io("bind attach socket", &name))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if let Ok(c) = conn.try_clone() {
                if let Ok(mut list) = ep.clients.0.lock() {
                    list.push(c);
                }
            }
            let ep = ep.clone();
            std::thread::spawn(move || read_client(conn, &ep));
        }
    });
    Ok(())
}

/// Takes one client's frames until it goes away; a `stdin_once` pipe is
/// closed when a session that used stdin ends.
fn read_client(mut conn: UnixStream, ep: &Endpoint) {
    let mut used_stdin = false;
    while let Some((chan, data)) = next_frame(&mut conn) {
        match chan {
            0 => {
                used_stdin = true;
                write_stdin(&ep.stdin, &data);
            }
            4 if data.len() == 4 => {
                if let Some(pty) = &ep.pty {
                    let rows = u16::from_be_bytes([data[0], data[1]]);
                    let cols = u16::from_be_bytes([data[2], data[3]]);
                    runtime::console::set_winsize(pty.as_ref(), rows, cols);
                }
            }
            255 => close_once(ep),
            _ => {}
        }
    }
    if used_stdin {
        close_once(ep);
    }
}

fn close_once(ep: &Endpoint) {
    if ep.stdin_once && ep.pty.is_none() {
        if let Ok(mut pipe) = ep.stdin.lock() {
            *pipe = None;
        }
    }
}

fn next_frame(conn: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    conn.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return None;
    }
    let mut data = vec![0u8; len];
    conn.read_exact(&mut data).ok()?;
    Some((head[0], data))
}

fn write_stdin(stdin: &Stdin, data: &[u8]) {
    let Ok(mut pipe) = stdin.lock() else {
        return;
    };
    if let Some(p) = pipe.as_mut() {
        if p.write_all(data).and_then(|()| p.flush()).is_err() {
            *pipe = None;
        }
    }
}

/// Connects to container `id`'s monitor.
pub async fn connect(id: &str) -> Result<tokio::net::UnixStream> {
    let name = socket_name(id);
    let addr =
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("name attach socket", &name))?;
    let conn = UnixStream::connect_addr(&addr).map_err(io("connect to the monitor", &name))?;
    conn.set_nonblocking(true)
        .map_err(io("configure attach socket", &name))?;
    tokio::net::UnixStream::from_std(conn).map_err(io("register attach socket", &name))
}

/// Reads one frame; `Ok(None)` at the end of the stream.
pub async fn read_frame(
    r: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "attach frame of {len} bytes"
        )));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Some((head[0], data)))
}

/// Writes one frame.
pub async fn write_frame(
    w: &mut (impl AsyncWrite + Unpin),
    chan: u8,
    data: &[u8],
) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(5 + data.len());
    frame.push(chan);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    w.write_all(&frame).await
}
