//! The kernel touchpoint: applying one nft transaction. The real
//! implementation feeds the script to `nft -f -` (one netlink batch, applied
//! atomically or not at all); the sync loop takes the trait so tests can
//! record transactions instead.

use std::io::Write;
use std::process::{Command, Stdio};

/// Why a transaction was not applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("nft -f rejected the transaction ({lines} lines): {stderr}")]
    Rejected { lines: usize, stderr: String },
}

/// Applies nft scripts.
pub trait Nft: Send + Sync + 'static {
    /// Applies `script` as one transaction.
    fn apply(&self, script: &str) -> Result<(), NftError>;
}

/// Runs the `nft` program (`argv`, then `-f -`).
#[derive(Debug, Clone)]
pub struct NftCommand {
    /// The command line before `-f -`: `["nft"]`, or with a prefix such as
    /// `ip netns exec NAME nft` to program another network namespace.
    pub argv: Vec<String>,
}

impl Default for NftCommand {
    fn default() -> Self {
        Self {
            argv: vec!["nft".into()],
        }
    }
}

impl Nft for NftCommand {
    fn apply(&self, script: &str) -> Result<(), NftError> {
        let spawn_err = |source| NftError::Spawn {
            program: self.argv.join(" "),
            source,
        };
        let (program, args) = self.argv.split_first().ok_or_else(|| {
            spawn_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty nft command line",
            ))
        })?;
        let mut child = Command::new(program)
            .args(args)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Rejected {
            lines: script.lines().count(),
            stderr: stderr.chars().take(2000).collect(),
        })
    }
}

/// Removes the bosun table if it exists (`--cleanup`), leaving every other
/// table alone.
pub fn cleanup(nft: &dyn Nft) -> Result<(), NftError> {
    let t = crate::render::TABLE;
    nft.apply(&format!("add table {t}\ndelete table {t}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Changes, Ruleset};
    use crate::model::{Endpoint, Proto, ServicePort};
    use crate::render::{render, Options};

    fn port(n: usize, eps: usize, affinity: Option<u32>) -> ServicePort {
        ServicePort {
            key: format!("ns/web{n}/tcp/http"),
            cluster_ip: format!("10.43.0.{}", n + 2).parse().unwrap(),
            port: 80,
            proto: Proto::Tcp,
            node_port: Some(30080 + n as u16),
            affinity,
            external_local: n % 2 == 1,
            internal_local: false,
            endpoints: (0..eps)
                .map(|i| Endpoint {
                    ip: format!("10.42.{n}.{}", i + 2).parse().unwrap(),
                    port: 8080,
                    local: i == 0,
                })
                .collect(),
        }
    }

    fn listing(ns: &testkit::TestNetns) -> String {
        let out = ns.exec("nft", &["list", "table", "ip", "bosun"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Applies `ports` as changes over `rs` (ports of `rs` not given go).
    fn sync(nft: &NftCommand, rs: &mut Ruleset, ports: &[ServicePort], opts: &Options) {
        let mut changes: Changes = rs.fragments().keys().map(|k| (k.clone(), None)).collect();
        for (k, f) in render(ports, opts) {
            changes.insert(k, Some(f));
        }
        let changes = rs.effective(changes);
        nft.apply(&rs.incremental(&changes).unwrap()).unwrap();
        rs.commit(changes);
    }

    /// Every transaction shape the sync loop produces is accepted by the
    /// kernel, in a private network namespace.
    #[test]
    fn kernel_accepts_full_incremental_and_cleanup() {
        testkit::require_root!();
        testkit::require_program!("nft");
        let ns = testkit::TestNetns::new();
        let nft = NftCommand {
            argv: ["ip", "netns", "exec", ns.name(), "nft"]
                .map(String::from)
                .to_vec(),
        };
        let opts = Options {
            cluster_cidr: Some("10.42.0.0/16".into()),
            masquerade_all: false,
        };
        let mut rs = Ruleset::new(render(&[port(0, 3, None), port(1, 2, Some(30))], &opts));
        nft.apply(&rs.full()).unwrap();
        // A stale table (a crashed run) is replaced, not added to.
        nft.apply(&rs.full()).unwrap();
        let text = listing(&ns);
        assert!(text.contains("numgen random mod 3 map"), "{text}");
        assert!(text.contains("timeout 30s"), "{text}");
        sync(
            &nft,
            &mut rs,
            &[port(0, 1, None), port(1, 0, Some(60)), port(2, 2, None)],
            &opts,
        );
        let text = listing(&ns);
        assert!(!text.contains("10.42.0.3"), "{text}");
        assert!(!text.contains("aff30"), "{text}");
        assert!(
            text.contains("10.43.0.3 . tcp . 80 : goto reject-chain"),
            "{text}"
        );
        // Affinity on and off again, endpoints changing.
        sync(
            &nft,
            &mut rs,
            &[port(0, 2, Some(10)), port(2, 3, None)],
            &opts,
        );
        assert!(listing(&ns).contains("ep-ns/web0/tcp/http/10.42.0.3/8080"));
        sync(&nft, &mut rs, &[port(0, 2, None), port(2, 1, None)], &opts);
        let text = listing(&ns);
        assert!(!text.contains("ep-"), "{text}");
        assert!(!text.contains("10.42.2.3"), "{text}");
        sync(&nft, &mut rs, &[], &opts);
        let text = listing(&ns);
        assert!(!text.contains("svc-") && !text.contains("10.42."), "{text}");
        cleanup(&nft).unwrap();
        cleanup(&nft).unwrap();
        assert_eq!(listing(&ns), "");
    }
}
