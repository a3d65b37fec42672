//! A loopback TCP proxy in front of one etcd member that can hold back
//! etcd's answers and then reset every connection, so a request is applied
//! by etcd while the client sees only a reset connection: the ambiguous
//! failure of a member dying mid-request, made on demand.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy; its accept loop and connections end when it drops.
pub struct Proxy {
    pub url: String,
    /// True while etcd's answers are held back.
    frozen: watch::Sender<bool>,
    /// Bumped to reset every open connection.
    cut: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on an ephemeral loopback port to `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let (frozen, _) = watch::channel(false);
        let (cut, _) = watch::channel(0);
        let (f, c) = (frozen.clone(), cut.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, f.subscribe(), c.subscribe()));
            }
        });
        Proxy {
            url,
            frozen,
            cut,
            accept,
        }
    }

    /// Holds back everything etcd sends from now on (requests still pass).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Resets every open connection (the held-back answers are lost), then
    /// lets new connections through.
    pub fn cut_and_thaw(&self) {
        self.cut.send_modify(|n| *n += 1);
        self.frozen.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Relays one client connection until either side closes or a cut comes;
/// a cut resets the client's socket (RST, as a killed peer would).
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    frozen: watch::Receiver<bool>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let cut_at = *cut.borrow_and_update();
    tokio::select! {
        biased;
        _ = cut.wait_for(|n| *n != cut_at) => {
            if let Ok(client) = client_rd.reunite(client_wr) {
                let _ = client.set_zero_linger();
            }
        }
        _ = tokio::io::copy(&mut client_rd, &mut server_wr) => {}
        _ = answers(&mut server_rd, &mut client_wr, frozen) => {}
    }
}

/// Copies etcd's answers to the client, holding each read while frozen.
async fn answers(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if frozen.wait_for(|f| !f).await.is_err() {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}
