//! [`TlsSettings`]: the one `tls:` shape of every component. A client (the
//! `elasticsearch` and `alertmanager` outputs) reads `ca_file` and
//! `insecure_skip_verify`; a server (the `http` input) reads `cert` and
//! `key`. Each side refuses the other's keys, naming them, rather than
//! ignoring them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
