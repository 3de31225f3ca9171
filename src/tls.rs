//! TLS for signaling: [`TlsRoots`] (the certificate authorities a client trusts) and the
//! client's `wss://` configuration made from them, and the server's (a certificate chain and
//! key from PEM files). rustls on its `ring` provider, set explicitly so that no process-wide
//! default provider is needed.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The certificate authorities a `wss://` server is checked against (by a
/// [`Call`](crate::Call), the server's webhooks and [`ServerApi`](crate::ServerApi)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The platform's trusted roots (the operating system's store).
    #[default]
    Platform,
    /// Only these certificates (PEM), e.g. a private CA or a self-signed server certificate.
    Pem(Vec<u8>),
}

impl TlsRoots {
    /// Trusts only the certificates of this PEM text.
    pub fn pem(pem: impl Into<Vec<u8>>) -> Self {
        TlsRoots::Pem(pem.into())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM text; `None` if it is not readable PEM.
pub(crate) fn certificates(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// The platform's trusted roots, read once per process.
fn platform_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a platform certificate could not be read");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "platform TLS roots loaded");
            Arc::new(roots)
        })
        .clone()
}

/// A client configuration trusting `roots`.
pub(crate) fn client_config(roots: &TlsRoots) -> Result<Arc<ClientConfig>, String> {
    let store = match roots {
        TlsRoots::Platform => platform_roots(),
        TlsRoots::Pem(pem) => {
            let mut store = RootCertStore::empty();
            for cert in certificates(pem).ok_or("the CA PEM text is not readable")? {
                store
                    .add(cert)
                    .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
            }
            Arc::new(store)
        }
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub(crate) fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(cert_pem).ok_or("the certificate file is not readable PEM")?;
    if chain.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file holds no readable private key: {e}"))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    Ok(Arc::new(config))
}
