//! The cluster's certificates: a CA made on first start and kept under the
//! data dir, a serving certificate re-signed at every start (so its names
//! follow the current addresses), an admin client certificate
//! (`O=system:masters`), and the admin kubeconfig that bundles them.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the {what} certificate")]
    Cert {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

type Result<T> = std::result::Result<T, PkiError>;

/// PEM-encoded material the server and its clients need.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// The API server's client certificate towards kubelets, signed at every start.
    pub kubelet_client_cert: String,
    pub kubelet_client_key: String,
}

const CA_NAME: &str = "bosun-ca";

fn cert_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Cert { what, source }
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA"))?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

fn leaf_params(
    sans: Vec<String>,
    cn: &str,
    org: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(sans).map_err(cert_err("leaf"))?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(org) = org {
        p.distinguished_name.push(DnType::OrganizationName, org);
    }
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `contents` to `path` with mode 0600 (keys and certs alike).
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |op, source| PkiError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    f.write_all(contents.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename into", e))
}

/// Loads the CA from `dir` (making it on first start), signs a fresh serving
/// certificate for `hosts` (IPs or DNS names), and makes the admin client
/// certificate once; the kubelet client certificate is made at every start.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<Pki> {
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let (ca_cert, ca_key) = match (read(&ca_cert_path)?, read(&ca_key_path)?) {
        (Some(c), Some(k)) => (c, KeyPair::from_pem(&k).map_err(cert_err("CA key"))?),
        _ => {
            let key = KeyPair::generate().map_err(cert_err("CA key"))?;
            let cert = ca_params()?.self_signed(&key).map_err(cert_err("CA"))?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            write_private(&ca_cert_path, &cert.pem())?;
            (cert.pem(), key)
        }
    };
    let issuer = Issuer::new(ca_params()?, ca_key);

    let server_key = KeyPair::generate().map_err(cert_err("serving key"))?;
    let server = leaf_params(
        hosts.to_vec(),
        "bosun-apiserver",
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?
    .signed_by(&server_key, &issuer)
    .map_err(cert_err("serving"))?;
    write_private(&dir.join("server.crt"), &server.pem())?;
    write_private(&dir.join("server.key"), &server_key.serialize_pem())?;

    let admin_cert_path = dir.join("admin.crt");
    let admin_key_path = dir.join("admin.key");
    let (admin_cert, admin_key) = match (read(&admin_cert_path)?, read(&admin_key_path)?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = KeyPair::generate().map_err(cert_err("admin key"))?;
            let cert = leaf_params(
                vec![],
                "bosun-admin",
                Some("system:masters"),
                ExtendedKeyUsagePurpose::ClientAuth,
            )?
            .signed_by(&key, &issuer)
            .map_err(cert_err("admin"))?;
            write_private(&admin_key_path, &key.serialize_pem())?;
            write_private(&admin_cert_path, &cert.pem())?;
            (cert.pem(), key.serialize_pem())
        }
    };
    let kubelet_key = KeyPair::generate().map_err(cert_err("kubelet client key"))?;
    let kubelet_client = leaf_params(
        vec![],
        "kube-apiserver-kubelet-client",
        Some("system:masters"),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?
    .signed_by(&kubelet_key, &issuer)
    .map_err(cert_err("kubelet client"))?;
    Ok(Pki {
        kubelet_client_cert: kubelet_client.pem(),
        kubelet_client_key: kubelet_key.serialize_pem(),
        ca_cert,
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        admin_cert,
        admin_key,
    })
}

/// The admin kubeconfig: the CA, the server URL and the admin client cert.
pub fn admin_kubeconfig(pki: &Pki, server_url: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: bosun\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {}\ncontexts:\n- name: bosun\n  context:\n    cluster: bosun\n    user: admin\n    namespace: default\ncurrent-context: bosun\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&pki.ca_cert),
        b64(&pki.admin_cert),
        b64(&pki.admin_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_keeps_the_ca_and_admin_cert_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let first = ensure(dir.path(), &hosts).unwrap();
        let second = ensure(dir.path(), &hosts).unwrap();
        assert_eq!(first.ca_cert, second.ca_cert);
        assert_eq!(first.admin_cert, second.admin_cert);
        assert!(first.server_cert.contains("BEGIN CERTIFICATE"));
        let kc = admin_kubeconfig(&first, "https://127.0.0.1:6443");
        assert!(kc.contains("client-certificate-data:"));
    }
}
