//! TLS for the generator's WebSocket connections (`--tls`): a client configuration shared by
//! every connection, and the stream that is either plain or TLS.

mod tickets;

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{
    client::TlsStream,
    rustls::{
        self,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        pki_types::{CertificateDer, ServerName, UnixTime},
        DigitallySignedStruct, SignatureScheme,
    },
    TlsConnector,
};

/// How the generator connects: set once from the command line.
static CONNECTOR: OnceLock<Option<TlsConnector>> = OnceLock::new();

/// The TLS options every scenario takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct TlsArgs {
    /// Connect with TLS (wss).
    #[arg(long, global = true)]
    pub(crate) tls: bool,
    /// With `--tls`: accept any server certificate (self-signed test certificates).
    #[arg(long, global = true)]
    pub(crate) insecure: bool,
    /// With `--tls`: no session resumption (every connection makes a full handshake; browsers
    /// resume).
    #[arg(long, global = true)]
    pub(crate) no_resume: bool,
}

/// Sets how every connection of this process connects.
pub(crate) fn init(args: &TlsArgs) {
    let connector = args.tls.then(|| {
        // ring, but X25519 and randomness from aws-lc-rs as the gateway has them (its
        // `tls.rs`), and aws-lc-rs' signature checks: both cost about half of ring's, which
        // leaves the generator room to drive a node's handshakes. X25519 share only.
        let mut provider = rustls::crypto::ring::default_provider();
        let aws = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
        provider.secure_random = aws.secure_random;
        provider.signature_verification_algorithms = aws.signature_verification_algorithms;
        let provider = Arc::new(provider);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let mut config = if args.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.resumption = match args.no_resume {
            true => rustls::client::Resumption::disabled(),
            false => rustls::client::Resumption::store(Arc::new(tickets::Tickets::default())),
        };
        TlsConnector::from(Arc::new(config))
    });
    let _ = CONNECTOR.set(connector);
}

/// A connection, plain or TLS.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// Wraps `tcp` in TLS when the process connects with TLS.
    pub(crate) async fn over(tcp: TcpStream) -> std::io::Result<Self> {
        match CONNECTOR.get().and_then(Option::as_ref) {
            None => Ok(Self::Plain(tcp)),
            Some(connector) => {
                let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
                let tls = connector.connect(name, tcp).await?;
                Ok(Self::Tls(Box::new(tls)))
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts any certificate, still checking the handshake's signatures: for test
/// certificates only (`--insecure`).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
