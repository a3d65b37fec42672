//! The UDP and TCP listeners. Cluster names are answered inline from the
//! current snapshot; forwarded queries get their own task so a slow
//! upstream never holds up the cluster answers.

use crate::forward;
use crate::message::{handle, Decision};
use crate::records::Snapshot;
use hickory_proto::op::{Message, ResponseCode};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// What every query handler shares.
pub struct Zone {
    pub domain: String,
    pub upstreams: Vec<SocketAddr>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl Zone {
    pub fn new(domain: &str, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            domain: domain.trim_matches('.').to_lowercase(),
            upstreams,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        }
    }

    /// The current snapshot (possibly stale by one batch window).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the snapshot.
    pub fn set(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
    }

    fn decide(&self, query: &[u8], max: usize) -> Decision {
        handle(query, &self.snapshot(), &self.domain, max)
    }
}

/// SERVFAIL for a query no upstream answered.
fn servfail(query: &[u8]) -> Vec<u8> {
    let id = query
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let op = Message::from_vec(query)
        .map(|m| m.op_code())
        .unwrap_or(hickory_proto::op::OpCode::Query);
    Message::error_msg(id, op, ResponseCode::ServFail)
        .to_vec()
        .unwrap_or_default()
}

/// Serves DNS over UDP until the socket fails.
pub async fn udp(sock: Arc<UdpSocket>, zone: Arc<Zone>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = sock.recv_from(&mut buf).await?;
        let query = &buf[..n];
        match zone.decide(query, 512) {
            Decision::Reply(bytes) => {
                let _ = sock.send_to(&bytes, peer).await;
            }
            Decision::Forward => {
                let (sock, zone, query) = (sock.clone(), zone.clone(), query.to_vec());
                tokio::spawn(async move {
                    let reply = forward::udp(&query, &zone.upstreams)
                        .await
                        .unwrap_or_else(|| servfail(&query));
                    let _ = sock.send_to(&reply, peer).await;
                });
            }
        }
    }
}

/// Serves DNS over TCP until the listener fails.
pub async fn tcp(listener: TcpListener, zone: Arc<Zone>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let zone = zone.clone();
        tokio::spawn(async move {
            if let Err(e) = tcp_conn(stream, &zone).await {
                tracing::debug!(error = %e, "dns tcp connection ended");
            }
        });
    }
}

async fn tcp_conn(mut s: TcpStream, zone: &Zone) -> std::io::Result<()> {
    loop {
        let n = match s.read_u16().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut query = vec![0u8; usize::from(n)];
        s.read_exact(&mut query).await?;
        let reply = match zone.decide(&query, 65535) {
            Decision::Reply(bytes) => bytes,
            Decision::Forward => forward::tcp(&query, &zone.upstreams)
                .await
                .unwrap_or_else(|| servfail(&query)),
        };
        let len = u16::try_from(reply.len()).unwrap_or(0);
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply[..usize::from(len)]);
        s.write_all(&framed).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    /// An upstream resolver on a real socket that answers every A query
    /// with 192.0.2.7.
    async fn fake_upstream() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut r = q.clone();
                r.set_message_type(hickory_proto::op::MessageType::Response);
                let name = q.queries()[0].name().clone();
                r.add_answer(Record::from_rdata(
                    name,
                    60,
                    RData::A(A([192, 0, 2, 7].into())),
                ));
                let _ = sock.send_to(&r.to_vec().unwrap(), peer).await;
            }
        });
        addr
    }

    async fn ask_udp(server: SocketAddr, name: &str) -> Message {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut m = Message::new();
        m.set_id(99)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        sock.send_to(&m.to_vec().unwrap(), server).await.unwrap();
        let mut buf = vec![0u8; 1500];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    #[tokio::test]
    async fn serves_cluster_names_and_forwards_the_rest_over_udp_and_tcp() {
        let upstream = fake_upstream().await;
        let dead = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        // A silent first upstream is skipped after its timeout.
        let zone = Arc::new(Zone::new("cluster.local.", vec![dead, upstream]));
        let snap: Vec<k8s_openapi::api::core::v1::Service> =
            serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"clusterIP": "10.43.0.5"}}]))
            .unwrap();
        zone.set(Snapshot::build(snap.iter(), std::iter::empty()));
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        tokio::spawn(super::udp(udp, zone.clone()));
        tokio::spawn(super::tcp(tcp, zone));

        let r = ask_udp(addr, "web.ns.svc.cluster.local.").await;
        assert_eq!(r.id(), 99);
        assert_eq!(r.answers()[0].data().to_string(), "10.43.0.5");
        let r = ask_udp(addr, "example.com.").await;
        assert_eq!(r.id(), 99);
        assert_eq!(r.answers()[0].data().to_string(), "192.0.2.7");

        // TCP, cluster name (the upstream above speaks UDP only).
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut m = Message::new();
        m.set_id(5).add_query(Query::query(
            Name::from_ascii("web.ns.svc.cluster.local.").unwrap(),
            RecordType::A,
        ));
        let q = m.to_vec().unwrap();
        s.write_u16(q.len() as u16).await.unwrap();
        s.write_all(&q).await.unwrap();
        let n = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(n)];
        s.read_exact(&mut buf).await.unwrap();
        let r = Message::from_vec(&buf).unwrap();
        assert_eq!(r.answers()[0].data().to_string(), "10.43.0.5");
    }
}
