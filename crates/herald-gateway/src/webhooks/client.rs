//! One webhook request: a signed JSON `POST` over a fresh HTTP/1.1 connection (TLS for
//! `https://`). Webhooks are few and far between next to publications, so a connection per
//! request keeps this small; a request counts as delivered on any 2xx answer.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{rustls::ClientConfig, TlsConnector};

/// Where a webhook goes, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    uri: Uri,
    host: String,
    port: u16,
    tls: bool,
}

impl Endpoint {
    /// `url`, already validated with the configuration.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        let tls = match uri.scheme_str()? {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Some(Self {
            host: host.to_owned(),
            port,
            tls,
            uri,
        })
    }
}

/// Why a request was not delivered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(u16),
}

/// `POST`s `body` to `endpoint` with `headers`, within `timeout`.
pub(crate) async fn post(
    endpoint: &Endpoint,
    tls: &Arc<ClientConfig>,
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<(), PostError> {
    tokio::time::timeout(timeout, exchange(endpoint, tls, headers, body))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn exchange(
    endpoint: &Endpoint,
    tls: &Arc<ClientConfig>,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<(), PostError> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
    tcp.set_nodelay(true)?;
    let mut request = Request::post(endpoint.uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority(endpoint))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .header(header::USER_AGENT, "herald-webhooks");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(body))
        .expect("valid method, path and headers");
    if endpoint.tls {
        let name = rustls_pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stream = TlsConnector::from(tls.clone()).connect(name, tcp).await?;
        send(stream, request).await
    } else {
        send(tcp, request).await
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(), PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let status = response.status();
            // Read the (small) answer so the connection ends cleanly; its content is unused.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status(status.as_u16()))
            }
        }
        Err(e) => Err(e.into()),
    };
    driver.abort();
    result
}

fn authority(endpoint: &Endpoint) -> String {
    let default = if endpoint.tls { 443 } else { 80 };
    let host = if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    };
    if endpoint.port == default {
        host
    } else {
        format!("{host}:{}", endpoint.port)
    }
}
