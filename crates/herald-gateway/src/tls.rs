//! wss: the WebSocket listener's TLS settings, from PEM files.
//!
//! The handshake runs on rustls with ring, except the key exchange and the randomness, which
//! come from aws-lc-rs: its X25519 takes about half the CPU of ring's (`cargo bench -p
//! herald-gateway --bench key_exchange`), and the key exchange is the largest share of a TLS
//! handshake's cost (docs/benchmarks.md). Once upgraded, a TLS 1.3 connection's records are
//! sealed and opened by the node itself with ring's AEAD (`ws/socket/sealed.rs`).

mod stream;

use std::{path::Path, sync::Arc};

pub(crate) use stream::{accept, Nonblocking, TlsStream};

use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto::aws_lc_rs, CipherSuite, ServerConfig};

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or holds no certificate.
    #[error("websocket.tls_cert_file {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file cannot be read or holds no private key.
    #[error("websocket.tls_key_file {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("websocket TLS: {0}")]
    Config(String),
}

/// The server settings for the certificate chain in `cert` and the private key in `key`,
/// offering HTTP/1.1 by ALPN; [`accept`] runs a handshake with them.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certificate = |reason: String| TlsError::Certificate {
        path: cert.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificate(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(certificate("no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
    // The classical groups, X25519 first; the hybrid post-quantum group is not offered, so a
    // browser that sends both shares gets X25519 (docs/security.md).
    provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
        aws_lc_rs::kx_group::SECP384R1,
    ];
    provider.secure_random = aws_lc_rs::default_provider().secure_random;
    // TLS 1.3's AES-128-GCM with SHA-256 first (as browsers ask), chosen whatever the
    // client's order: SHA-256 runs on the CPU's SHA instructions, the SHA-384 of the AES-256
    // suite does not, and the key schedule hashes on every handshake (docs/benchmarks.md).
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    // An upgraded TLS 1.3 connection leaves rustls and keeps only its keys
    // (`ws/socket/sealed.rs`).
    config.enable_secret_extraction = true;
    // Stateless session tickets (encrypted with a key the node rotates every 6 hours): a
    // resuming client skips the certificate and its signature, however many connections
    // came between.
    config.ticketer = aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    // One ticket per connection (rustls' default is two): a browser's page holds one
    // connection, and each reconnection brings a fresh ticket.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}
