//! [`TlsSettings`]: the one `tls:` shape of every component. A client (the
//! `elasticsearch` and `alertmanager` outputs) reads `ca_file` and
//! `insecure_skip_verify`; a server (the `http`, `forward` and `otlp`
//! inputs) reads `cert` and `key`, and [`server_config`] builds its rustls
//! configuration. Each side refuses the other's keys, naming them, rather
//! than ignoring them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio_rustls::rustls;

/// `tls:` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Client: PEM file of CA certificates trusted in addition to the
    /// bundled web roots; relative to the config file's folder.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client: accept any server certificate. For tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Server: PEM certificate chain, leaf first; relative to the config
    /// file's folder.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Server: PEM private key (PKCS#8, PKCS#1 or SEC1); relative to the
    /// config file's folder.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl TlsSettings {
    /// Make relative paths relative to `base`, the config file's folder.
    pub fn rebase(mut self, base: &Path) -> Self {
        for path in [&mut self.ca_file, &mut self.cert, &mut self.key].into_iter().flatten() {
            *path = base.join(&*path);
        }
        self
    }

    /// Check the settings suit a client.
    ///
    /// # Errors
    /// Names `cert`/`key` when set: client certificates are not supported.
    pub fn for_client(&self) -> Result<(), String> {
        if self.cert.is_some() || self.key.is_some() {
            return Err(
                "`cert` and `key` are server settings; a client reads `ca_file` and `insecure_skip_verify`".into()
            );
        }
        Ok(())
    }

    /// The server's certificate and key files.
    ///
    /// # Errors
    /// When either is missing, or a client setting is set.
    pub fn for_server(&self) -> Result<(&Path, &Path), String> {
        if self.ca_file.is_some() || self.insecure_skip_verify {
            return Err(
                "`ca_file` and `insecure_skip_verify` are client settings; a server reads `cert` and `key`".into()
            );
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok((cert, key)),
            _ => Err("a server needs both `cert` and `key`".into()),
        }
    }
}

/// A rustls server configuration from the `cert` and `key` files, offering
/// `alpn` protocols (e.g. `h2`, `http/1.1`; none for a raw TCP protocol).
///
/// # Errors
/// `(file, reason)`: the settings do not suit a server, a file cannot be
/// read or holds no certificate, or the key does not match it.
pub fn server_config(tls: &TlsSettings, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, (String, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let error = |file: &Path, reason: String| (file.display().to_string(), reason);
    let (cert, key) = tls.for_server().map_err(|reason| ("tls".to_string(), reason))?;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(error(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| error(key, e.to_string()))?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| error(cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| error(key, format!("certificate and key do not work together: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
