//! The kubelet server's TLS: a self-signed serving certificate made at
//! start (the API server does not verify it, as upstream's default), and
//! mandatory client certificates signed by the cluster CA.

use super::ServerError;
use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};

fn err(what: &str) -> impl FnOnce(String) -> ServerError + '_ {
    move |e| ServerError::Tls(format!("{what}: {e}"))
}

/// Builds the acceptor: client certificates from `ca_pem` are required.
pub fn acceptor(ca_pem: &str, hosts: &[String]) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| err("parse the CA PEM")(e.to_string()))?;
        roots
            .add(ca)
            .map_err(|e| err("add the CA")(e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| err("client verification")(e.to_string()))?;
    let mut names = hosts.to_vec();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    let key = rcgen::KeyPair::generate().map_err(|e| err("serving key")(e.to_string()))?;
    let cert = rcgen::CertificateParams::new(names)
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| err("serving certificate")(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .map_err(|e| err("serving key")(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions")(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(|e| err("serving certificate")(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
