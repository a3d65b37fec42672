//! Image references as Docker parses them: `[host[:port]/]path[:tag][@digest]`,
//! with `docker.io` and `library/` filled in for short names.

use crate::digest::Digest;
use crate::error::{Error, Result};
use std::fmt;

/// The registry short names resolve to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`, …
    pub registry: String,
    /// `library/busybox`, `team/app`, …
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// A pinned manifest digest.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidReference {
            reference: input.to_string(),
            reason,
        };
        if input.is_empty() || input.len() > 255 {
            return Err(bad("name is empty or too long"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|_| bad("bad digest"))?)),
            None => (input, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
            None => (name, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad("invalid tag"));
            }
        }
        let (registry, path) = split_registry(name);
        if !registry.is_empty() && !valid_host(registry) {
            return Err(bad("invalid registry host"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad("invalid repository name"));
        }
        let registry = if registry.is_empty() {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Self {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it: `busybox`, `team/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        self.repository
            .strip_prefix("library/")
            .unwrap_or(&self.repository)
            .to_string()
    }

    /// The familiar name with its tag or digest: `busybox:latest`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// What the registry API is asked for: the digest if pinned, else the tag.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The host:port the registry API is served on.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// True for registries on this machine, which are spoken to over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The canonical form used as the key in the store: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

/// Splits off the registry host when the first component looks like one.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => ("", name),
    }
}

fn valid_host(host: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    !host.is_empty() && host.chars().all(ok_char) && !host.starts_with(['.', '-', ':'])
}

/// A path component: lowercase alphanumerics joined by `.`, `_`, `__` or dashes.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && bytes
            .iter()
            .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !c.contains("..")
        && !c.contains("___")
}

fn valid_tag(tag: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    !tag.is_empty() && tag.len() <= 128 && !tag.starts_with(['.', '-']) && tag.bytes().all(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalizes_short_names() {
        assert_eq!(p("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(p("busybox").familiar(), "busybox:latest");
        assert_eq!(p("team/app:v1").to_string(), "docker.io/team/app:v1");
        assert_eq!(p("docker.io/library/busybox:1").familiar(), "busybox:1");
    }

    #[test]
    fn hosts_ports_and_digests() {
        let r = p("127.0.0.1:5000/a/b:tag");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "a/b")
        );
        assert!(r.is_loopback());
        assert_eq!(r.familiar(), "127.0.0.1:5000/a/b:tag");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("localhost:5000/x@{d}"));
        assert_eq!((r.tag.clone(), r.api_reference()), (None, d.clone()));
        assert!(r.is_loopback());
        let r = p(&format!("quay.io/x:1@{d}"));
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert!(!r.is_loopback());
        assert_eq!(p("localhost/x").registry, "localhost");
        assert_eq!(p("busybox").api_host(), "registry-1.docker.io");
    }

    #[test]
    fn rejects_malformed_references() {
        for s in [
            "",
            "Busybox",
            "a//b",
            "a:",
            ":tag",
            "a:b:c",
            "-a",
            "a@sha256:12",
            "a b",
            "a/B",
            "a:.x",
        ] {
            let err = Reference::parse(s).unwrap_err().to_string();
            assert!(err.starts_with("invalid reference format"), "{s}: {err}");
        }
    }
}
