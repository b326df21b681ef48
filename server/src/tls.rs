//! HTTPS for `stepline serve`: the certificate chain and private key of
//! `[tls]` (PEM files) served through rustls, read again on SIGHUP so that a
//! renewed certificate is taken without a restart.
//!
//! A reload that fails (a file missing or half written, a key that does not
//! match its certificate) keeps the certificate in use and logs why: a bad
//! renewal never takes the server down. New connections get the new
//! certificate; open ones keep the one they negotiated.
//!
//! The handshake itself happens in the connection loop (`limits`), per
//! connection and within the request-head timeout, so a client that opens a
//! connection and never finishes its handshake holds one place like any
//! slow client.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The largest certificate or key file read: a chain is a few KiB.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Where the server's certificate chain and private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then its intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes: not a PEM certificate or key")]
    TooLarge { path: PathBuf },
    #[error("{path} is not PEM")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no certificate (a PEM 'BEGIN CERTIFICATE' block)")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no private key (a PEM 'BEGIN PRIVATE KEY' block)")]
    NoKey { path: PathBuf },
    #[error("the key in {key} cannot be used with the certificate in {cert}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot set up TLS")]
    Config(#[source] rustls::Error),
}

/// The certificate in use, and the files it was read from.
#[derive(Debug)]
struct Current {
    files: TlsFiles,
    key: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.key.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The server's TLS: an acceptor for the connection loop, and the
/// certificate it presents, reloadable. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<Current>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.current.files)
            .finish_non_exhaustive()
    }
}

/// rustls's ring provider: the one reqwest already builds.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTls {
    /// Reads the certificate and key (an error names the file and what is
    /// wrong with it).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = provider();
        let key = certified_key(&files, &provider)?;
        let current = Arc::new(Current {
            files,
            key: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        // The connection loop speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            current,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.current.files
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again; on success new connections get the new
    /// certificate, on failure the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.current.files, &provider())?;
        *self.current.key.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }
}

/// Handles SIGHUP until the process ends: reloads `tls` and logs the
/// outcome, or (plain HTTP) logs that there is nothing to reload. Without a
/// handler SIGHUP would end the process, and `systemctl reload` sends it.
pub fn reload_on_sighup(tls: Option<ServerTls>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(tls) = tls.clone() else {
                tracing::info!("SIGHUP: nothing to reload (no [tls])");
                continue;
            };
            let files = tls.files().clone();
            let reloaded = tokio::task::spawn_blocking(move || tls.reload()).await;
            match reloaded {
                Ok(Ok(())) => tracing::info!(
                    cert_file = %files.cert_file.display(),
                    key_file = %files.key_file.display(),
                    "TLS certificate reloaded"
                ),
                Ok(Err(e)) => tracing::error!(
                    error = %error_chain(&e),
                    "TLS certificate not reloaded; the previous one stays in use"
                ),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded"),
            }
        }
    });
    Ok(())
}

/// An error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// A PEM file's bytes, bounded.
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The chain and key of `files`, checked to belong together.
fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path, source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let cert_pem = read_pem(&files.cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&files.cert_file, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert_file.clone(),
        });
    }
    let key_pem = read_pem(&files.key_file)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: files.key_file.clone(),
            });
        }
        Err(e) => return Err(pem(&files.key_file, e)),
    };
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
        cert: files.cert_file.clone(),
        key: files.key_file.clone(),
        source,
    })
}
