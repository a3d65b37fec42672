//! Relaying queries outside the cluster domain to the host's resolvers,
//! byte for byte: the upstream's answer (id included) goes back unchanged.
//! Upstreams come from /etc/resolv.conf; loopback stubs such as
//! 127.0.0.53 are kept, because this server runs in the host's network
//! namespace and reaches them even though pods could not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The `nameserver` entries of a resolv.conf, on port 53.
pub fn resolv_conf(path: &Path) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_resolv_conf(&text)
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Sends `query` over UDP to each upstream in turn; the first reply whose
/// id matches wins.
pub async fn udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let local: SocketAddr = match up {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let attempt = async {
            let sock = UdpSocket::bind(local).await.ok()?;
            sock.connect(up).await.ok()?;
            sock.send(query).await.ok()?;
            let mut buf = vec![0u8; 65535];
            loop {
                let n = sock.recv(&mut buf).await.ok()?;
                if n >= 2 && buf[..2] == query[..2] {
                    return Some(buf[..n].to_vec());
                }
            }
        };
        match tokio::time::timeout(TIMEOUT, attempt).await {
            Ok(Some(reply)) => return Some(reply),
            _ => tracing::debug!(upstream = %up, "dns upstream did not answer over UDP"),
        }
    }
    None
}

/// Sends `query` over TCP (two-byte length prefix) to each upstream in turn.
pub async fn tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let len = u16::try_from(query.len()).ok()?;
    for up in upstreams {
        let attempt = async {
            let mut s = TcpStream::connect(up).await.ok()?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            s.write_all(&framed).await.ok()?;
            let n = s.read_u16().await.ok()?;
            let mut buf = vec![0u8; usize::from(n)];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        };
        if let Ok(Some(reply)) = tokio::time::timeout(TIMEOUT, attempt).await {
            return Some(reply);
        }
        tracing::debug!(upstream = %up, "dns upstream did not answer over TCP");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers() {
        let text = "# c\nsearch x\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions ndots:5\n";
        let got: Vec<String> = parse_resolv_conf(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["10.255.255.53:53", "127.0.0.53:53", "[fe80::1]:53"]);
    }
}
