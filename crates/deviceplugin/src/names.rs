//! Validation of what a plugin sends at registration: extended resource
//! names (`domain/name`, outside kubernetes.io) and endpoint file names.

use crate::error::{Error, Result};

/// Checks an extended resource name the way the kubelet does: a DNS
/// subdomain prefix that is not (a subdomain of) kubernetes.io, a slash, and
/// a name of at most 63 alphanumerics, '-', '_' or '.', starting and ending
/// alphanumeric.
pub fn validate_resource_name(name: &str) -> Result<()> {
    let bad = |reason| Error::Invalid {
        what: "resource name",
        value: name.to_string(),
        reason,
    };
    let (domain, local) = name
        .split_once('/')
        .ok_or_else(|| bad("must be <domain>/<name>"))?;
    if !is_dns_subdomain(domain) {
        return Err(bad("prefix must be a DNS subdomain"));
    }
    if domain == "kubernetes.io" || domain.ends_with(".kubernetes.io") {
        return Err(bad("the kubernetes.io domain is reserved"));
    }
    if !is_qualified_part(local) {
        return Err(bad("name must be 1-63 alphanumerics, '-', '_' or '.'"));
    }
    Ok(())
}

/// Checks that an endpoint is a plain file name (the socket lives in the
/// device-plugins directory) and not the kubelet's own socket.
pub fn validate_endpoint(endpoint: &str) -> Result<()> {
    let bad = |reason| Error::Invalid {
        what: "endpoint",
        value: endpoint.to_string(),
        reason,
    };
    if endpoint.is_empty() || endpoint == "." || endpoint == ".." || endpoint.contains('/') {
        return Err(bad("must be a file name in the device-plugins directory"));
    }
    if endpoint == crate::KUBELET_SOCKET {
        return Err(bad("is the kubelet's own socket"));
    }
    Ok(())
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        for ok in ["example.com/widget", "nvidia.com/gpu", "a.b-c.io/x_y.z"] {
            assert!(validate_resource_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "widget",
            "/widget",
            "example.com/",
            "Example.com/widget",
            "kubernetes.io/widget",
            "foo.kubernetes.io/widget",
            "example.com/-w",
            "example.com/a/b",
        ] {
            assert!(validate_resource_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        assert!(validate_endpoint("widget.sock").is_ok());
        for bad in ["", "..", "../x.sock", "/tmp/x.sock", "kubelet.sock"] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
    }
}
