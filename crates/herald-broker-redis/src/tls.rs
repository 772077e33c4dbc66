//! TLS for `rediss://` endpoints (rustls).

use std::{path::Path, sync::Arc};

use rustls_pki_types::{pem::PemObject, CertificateDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The TLS settings of a broker's connections: which certificate authorities to trust.
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<ClientConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// The CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or holds no certificate.
    #[error("cannot read CA certificates from {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl TlsConfig {
    /// The rustls client configuration (for other TLS clients of a node, such as webhooks).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.0.clone()
    }

    /// Trusts the certificates of the PEM file `ca_file`, or the Mozilla root set when `None`.
    ///
    /// # Errors
    /// [`TlsError`] when the file cannot be read or holds no usable certificate.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let err = |reason: String| TlsError::Ca {
                    path: path.display().to_string(),
                    reason,
                };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| err(e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(err("no certificate in the file".into()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| err(e.to_string()))?;
                }
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Ca {
                path: String::new(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(Arc::new(config)))
    }
}
