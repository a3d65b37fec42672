//! One node-level masquerade rule for a pod network, in its own nftables
//! table, instead of the bridge plugin's per-container `ipMasq` chains
//! (several `iptables` runs per container, serialized by the xtables lock).
//!
//! The rule mirrors what `ipMasq` installs for each container: traffic from
//! the network's subnet to anywhere outside that subnet, multicast excepted,
//! leaves with the host's address. Applying is one `nft -f -` transaction
//! that replaces the table whole, so it is idempotent (a restarted caller
//! applies it again) and never leaves half a table.

use crate::{Error, Result};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The masquerade of one pod network: its subnet, named after its bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masquerade {
    /// `ip` or `ip6`.
    family: &'static str,
    table: String,
    subnet: String,
}

impl Masquerade {
    /// The masquerade for `subnet` (`10.42.0.0/24`, `fd00::/64`) of the
    /// network on `bridge` (the table is `bosun-masq-<bridge>`).
    pub fn new(bridge: &str, subnet: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Config {
            what: format!("masquerade subnet {subnet:?}"),
            reason: reason.into(),
        };
        let (addr, len) = subnet
            .split_once('/')
            .ok_or_else(|| bad("no prefix length"))?;
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let len: u32 = len.parse().map_err(|_| bad("bad prefix length"))?;
        // The network address (host bits cleared), as host-local reads the range.
        let (family, net) = match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                ("ip", IpAddr::from((u32::from(a) & mask).to_be_bytes()))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                ("ip6", IpAddr::from((u128::from(a) & mask).to_be_bytes()))
            }
            _ => return Err(bad("prefix length too long")),
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if bridge.is_empty() || !bridge.chars().all(name_ok) {
            return Err(Error::Config {
                what: format!("bridge name {bridge:?}"),
                reason: "must be letters, digits, '-', '_' or '.'".into(),
            });
        }
        Ok(Self {
            family,
            table: table_name(bridge),
            subnet: format!("{net}/{len}"),
        })
    }

    /// The table's name (`bosun-masq-<bridge>`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The transaction that (re)creates the table with the one rule.
    pub fn script(&self) -> String {
        let (f, t, s) = (self.family, &self.table, &self.subnet);
        let (daddr, multicast) = match f {
            "ip" => ("ip daddr", "224.0.0.0/4"),
            _ => ("ip6 daddr", "ff00::/8"),
        };
        let saddr = if f == "ip" { "ip saddr" } else { "ip6 saddr" };
        format!(
            "add table {f} {t}\n\
             delete table {f} {t}\n\
             table {f} {t} {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\t{saddr} {s} {daddr} != {s} {daddr} != {multicast} masquerade\n\
             \t}}\n\
             }}\n"
        )
    }

    /// Installs (or replaces) the table.
    pub fn apply(&self) -> Result<()> {
        nft(&self.script())
    }

    /// Removes the table; fine if it is not there.
    pub fn remove(&self) -> Result<()> {
        let (f, t) = (self.family, &self.table);
        nft(&format!("add table {f} {t}\ndelete table {f} {t}\n"))
    }
}

/// `bosun-masq-<bridge>`: one table per pod network, so nodes sharing a
/// host (tests, benches) never touch each other's rule.
pub fn table_name(bridge: &str) -> String {
    format!("bosun-masq-{bridge}")
}

/// Feeds `script` to `nft -f -` (one atomic netlink batch).
fn nft(script: &str) -> Result<()> {
    let spawn_err = |source| Error::Spawn {
        plugin: "nft".into(),
        source,
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // nft exiting early closes the pipe; its status says why.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Plugin {
        plugin: "nft".into(),
        command: "apply",
        code: 0,
        msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        details: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_masquerades_the_subnet_to_outside_but_not_multicast() {
        let m = Masquerade::new("bkt1", "10.42.0.0/24").unwrap();
        let s = m.script();
        assert!(s.contains("table ip bosun-masq-bkt1 {"), "{s}");
        assert!(
            s.contains("type nat hook postrouting priority srcnat;"),
            "{s}"
        );
        assert!(
            s.contains(
                "ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/24 ip daddr != 224.0.0.0/4 masquerade"
            ),
            "{s}"
        );
        assert!(s.starts_with("add table ip bosun-masq-bkt1\ndelete table ip bosun-masq-bkt1\n"));
        let v6 = Masquerade::new("b6", "fd00:1::7/64").unwrap().script();
        assert!(
            v6.contains("ip6 saddr fd00:1::/64 ip6 daddr != fd00:1::/64 ip6 daddr != ff00::/8"),
            "{v6}"
        );
    }

    #[test]
    fn host_bits_of_the_subnet_are_cleared() {
        let s = Masquerade::new("b", "10.42.7.9/16").unwrap().script();
        assert!(s.contains("ip saddr 10.42.0.0/16 "), "{s}");
    }

    #[test]
    fn bad_subnets_and_bridge_names_are_refused() {
        for bad in ["10.42.0.0", "10.42.0.0/33", "x/24", "10.42.0.0/a"] {
            assert!(Masquerade::new("b", bad).is_err(), "{bad}");
        }
        for bad in ["", "b;flush ruleset", "b c"] {
            assert!(Masquerade::new(bad, "10.0.0.0/8").is_err(), "{bad:?}");
        }
    }
}
