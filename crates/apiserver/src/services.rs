//! Service IP and port allocation: ClusterIPs from the service CIDR and
//! NodePorts from the node-port range, rebuilt from stored Services at start.

use serde_json::Value;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("invalid service CIDR {0:?}: want an IPv4 network such as 10.43.0.0/16")]
    Cidr(String),
    #[error("invalid node port range {0:?}: want LOW-HIGH such as 30000-32767")]
    Range(String),
}

#[derive(Debug)]
pub struct Allocator {
    base: u32,
    size: u32,
    ports: (u16, u16),
    used: Mutex<(HashSet<u32>, HashSet<u16>)>,
}

pub fn parse_range(s: &str) -> Result<(u16, u16), AllocError> {
    let bad = || AllocError::Range(s.to_string());
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl Allocator {
    pub fn new(cidr: &str, ports: (u16, u16)) -> Result<Self, AllocError> {
        let bad = || AllocError::Cidr(cidr.to_string());
        let (ip, bits) = cidr.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let bits: u32 = bits.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&bits) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - bits);
        Ok(Self {
            base: u32::from(ip) & mask,
            size: 1 << (32 - bits),
            ports,
            used: Mutex::new((HashSet::new(), HashSet::new())),
        })
    }

    /// The first usable address: the `kubernetes` Service's ClusterIP.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// The `n`th address of the service CIDR (10 → the kube-dns Service's
    /// ClusterIP, 10.43.0.10 in the default CIDR).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashSet<u32>, HashSet<u16>)> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_range(&self, ip: &str) -> Option<u32> {
        let n = u32::from(ip.parse::<Ipv4Addr>().ok()?);
        (n > self.base && n < self.base + self.size - 1).then_some(n)
    }

    /// Marks what an existing Service holds.
    pub fn reserve(&self, svc: &Value) {
        let mut used = self.lock();
        if let Some(n) = svc["spec"]["clusterIP"]
            .as_str()
            .and_then(|ip| self.in_range(ip))
        {
            used.0.insert(n);
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(np) = p["nodePort"].as_u64() {
                used.1.insert(np as u16);
            }
        }
    }

    /// Frees what a deleted Service held.
    pub fn release(&self, svc: &Value) {
        let mut used = self.lock();
        if let Some(n) = svc["spec"]["clusterIP"]
            .as_str()
            .and_then(|ip| self.in_range(ip))
        {
            used.0.remove(&n);
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(np) = p["nodePort"].as_u64() {
                used.1.remove(&(np as u16));
            }
        }
    }

    /// Fills in `spec.clusterIP(s)` and node ports; `old` supplies values an
    /// update left empty. Returns a message when the range is exhausted or a
    /// requested value is taken.
    pub fn allocate(&self, svc: &mut Value, old: Option<&Value>) -> Result<(), String> {
        let ty = svc["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        if ty == "ExternalName" {
            return Ok(());
        }
        let mut used = self.lock();
        let old_ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .unwrap_or("");
        let ip = match svc["spec"]["clusterIP"].as_str().unwrap_or("") {
            "" if !old_ip.is_empty() => old_ip.to_string(),
            "" => {
                let n = (self.base + 1..self.base + self.size - 1)
                    .find(|n| !used.0.contains(n))
                    .ok_or("no ClusterIPs left in the service CIDR")?;
                used.0.insert(n);
                Ipv4Addr::from(n).to_string()
            }
            requested => requested.to_string(),
        };
        if ip != old_ip && ip != "None" {
            let n = self
                .in_range(&ip)
                .ok_or("the provided IP is not in the valid range")?;
            used.0.insert(n);
        }
        svc["spec"]["clusterIP"] = Value::String(ip.clone());
        svc["spec"]["clusterIPs"] = serde_json::json!([ip]);
        if ty == "NodePort" || ty == "LoadBalancer" {
            let old_ports = old
                .map(|o| o["spec"]["ports"].clone())
                .unwrap_or(Value::Null);
            let ports = svc["spec"]["ports"].as_array_mut().map(|p| p.iter_mut());
            for (i, p) in ports.into_iter().flatten().enumerate() {
                if p["nodePort"].as_u64().is_some() {
                    continue;
                }
                if let Some(np) = old_ports[i]["nodePort"].as_u64() {
                    p["nodePort"] = np.into();
                    continue;
                }
                let np = (self.ports.0..=self.ports.1)
                    .find(|n| !used.1.contains(n))
                    .ok_or("no node ports left in the range")?;
                used.1.insert(np);
                p["nodePort"] = np.into();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocates_distinct_ips_and_node_ports() {
        let a = Allocator::new("10.43.0.0/16", (30000, 30001)).unwrap();
        assert_eq!(a.first().to_string(), "10.43.0.1");
        let mut s1 = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let mut s2 = s1.clone();
        a.allocate(&mut s1, None).unwrap();
        a.allocate(&mut s2, None).unwrap();
        assert_ne!(s1["spec"]["clusterIP"], s2["spec"]["clusterIP"]);
        assert_ne!(
            s1["spec"]["ports"][0]["nodePort"],
            s2["spec"]["ports"][0]["nodePort"]
        );
        let mut s3 = s1.clone();
        s3["spec"]["ports"][0]["nodePort"] = Value::Null;
        s3["spec"]["clusterIP"] = Value::Null;
        assert!(a.allocate(&mut s3, None).is_err());
        assert_eq!(parse_range("30000-32767").unwrap(), (30000, 32767));
    }
}
