//! A small HTTP/1.1 client on hyper, for the webhooks and the server API client: one origin,
//! one kept-alive connection, `https://` through the same rustls setup as `wss://`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use thiserror::Error;

use crate::tls::TlsRoots;

/// Why a request did not get an answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an absolute `http://` or `https://` URL.
    #[error("not an http:// or https:// URL: {url}")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// The connection could not be made (or the TLS handshake failed).
    #[error("connecting to {origin}: {source}")]
    Connect {
        /// Where.
        origin: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS setup is not usable (the CA certificates, the server name).
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// The request could not be made (a header value that is not one).
    #[error("a request could not be made: {reason}")]
    Request {
        /// What is wrong.
        reason: String,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
}

/// One origin's client.
pub(crate) struct HttpClient {
    uri: Uri,
    roots: TlsRoots,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    /// A client for `url`'s origin (its path is the default path of requests).
    pub(crate) fn new(url: &str, roots: TlsRoots) -> Result<Self, HttpError> {
        let invalid = || HttpError::InvalidUrl {
            url: url.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid());
        }
        Ok(HttpClient {
            uri,
            roots,
            sender: None,
        })
    }

    /// The URL it was made with.
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Forgets the kept connection (after a timeout: it may be stuck).
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    /// Sends `method` to `path` (or the URL's own path) with `headers` and `body`; the status
    /// and the whole answer body.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: Option<&str>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let (mut sender, reused) = match self.sender.take() {
            Some(sender) if sender.is_ready() => (sender, true),
            _ => (self.connect().await?, false),
        };
        let base = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let make = || {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path.unwrap_or(base))
                .header(
                    header::HOST,
                    self.uri.authority().map_or("", |a| a.as_str()),
                );
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request
                .body(Full::new(body.clone()))
                .map_err(|e| HttpError::Request {
                    reason: e.to_string(),
                })
        };
        let response = match sender.send_request(make()?).await {
            Ok(response) => response,
            // A kept connection the server closed meanwhile (it closes idle ones): once more,
            // on a new one.
            Err(e) if reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => {
                sender = self.connect().await?;
                sender.send_request(make()?).await?
            }
            Err(e) => return Err(e.into()),
        };
        let status = response.status();
        // Read to its end, so the connection can take the next request.
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let host = self.uri.host().unwrap_or_default().trim_matches(['[', ']']);
        let https = self.uri.scheme_str() == Some("https");
        let port = self.uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let origin = format!("{host}:{port}");
        let connect_error = |source| HttpError::Connect {
            origin: origin.clone(),
            source,
        };
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(connect_error)?;
        let _ = tcp.set_nodelay(true);
        if !https {
            return handshake(tcp).await;
        }
        let config =
            crate::tls::client_config(&self.roots).map_err(|reason| HttpError::Tls { reason })?;
        let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
            HttpError::Tls {
                reason: e.to_string(),
            }
        })?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(connect_error)?;
        handshake(tls).await
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
