//! The bosun cluster DNS. Answers, from API watches of Services and
//! EndpointSlices:
//! - `<svc>.<ns>.svc.<domain>`: A = ClusterIP; headless: the ready endpoint
//!   IPs; ExternalName: a CNAME; AAAA: no data (IPv4 clusters).
//! - `<host>.<svc>.<ns>.svc.<domain>` for headless endpoints (hostname or
//!   dashed IP), `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for named
//!   ports, `<a-b-c-d>.<ns>.pod.<domain>`.
//! - NXDOMAIN (with the zone's SOA) for other names in the domain; every
//!   other name is relayed to the host's resolvers ([`forward`]).
//!
//! Entry point: [`run`], which also keeps the kube-dns EndpointSlice
//! pointing at the listening address ([`publish`]).

#![forbid(unsafe_code)]

pub mod forward;
pub mod message;
pub mod publish;
pub mod records;
pub mod server;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use records::Snapshot;
use server::Zone;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;

pub use publish::Publish;

/// How the DNS server runs.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// UDP and TCP address to listen on.
    pub listen: SocketAddr,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// Resolvers for other names (usually [`forward::resolv_conf`]).
    pub upstreams: Vec<SocketAddr>,
    /// Keep the kube-dns EndpointSlice pointing at `listen`.
    pub publish: Option<Publish>,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving DNS on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds UDP and TCP on one port; port 0 picks one free for both.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), DnsError> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| DnsError::Bind { addr, source })?;
        let actual = udp
            .local_addr()
            .map_err(|source| DnsError::Bind { addr, source })?;
        match TcpListener::bind(actual).await {
            Ok(tcp) => return Ok((udp, tcp, actual)),
            Err(source) if addr.port() == 0 => last = Some(source),
            Err(source) => return Err(DnsError::Bind { addr, source }),
        }
    }
    Err(DnsError::Bind {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}

/// Binds the listeners, then serves until the future is dropped. The
/// published EndpointSlice carries the port actually bound.
pub async fn run(client: Client, cfg: DnsConfig) -> Result<(), DnsError> {
    let (udp, tcp, addr) = bind(cfg.listen).await?;
    let udp = Arc::new(udp);
    // The upstreams never include ourselves (a host whose resolv.conf
    // points at the cluster DNS would loop).
    let upstreams = cfg
        .upstreams
        .iter()
        .copied()
        .filter(|u| *u != addr)
        .collect();
    let zone = Arc::new(Zone::new(&cfg.domain, upstreams));
    tokio::spawn(watch(client.clone(), zone.clone()));
    if let Some(mut p) = cfg.publish.clone() {
        p.port = addr.port();
        tokio::spawn(publish::keep(client, p));
    }
    tracing::info!(%addr, domain = %zone.domain, upstreams = ?zone.upstreams, "cluster DNS listening");
    let serve = |source| DnsError::Serve { addr, source };
    tokio::select! {
        r = server::udp(udp, zone.clone()) => r.map_err(serve),
        r = server::tcp(tcp, zone) => r.map_err(serve),
    }
}

/// Rebuilds the zone snapshot after each burst of watch events.
async fn watch(client: Client, zone: Arc<Zone>) {
    let wake = Arc::new(Notify::new());
    let services = cache::<Service>(&client, wake.clone());
    let slices = cache::<EndpointSlice>(&client, wake.clone());
    loop {
        wake.notified().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (s, e) = (services.state(), slices.state());
        zone.set(Snapshot::build(
            s.iter().map(|x| x.as_ref()),
            e.iter().map(|x| x.as_ref()),
        ));
    }
}

fn cache<K>(client: &Client, wake: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "cluster DNS watch error");
            }
            wake.notify_one();
        }
    });
    reader
}
