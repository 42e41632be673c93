//! TLS for the node-to-node exchange: the client side the agent uses to
//! reach peers when the node's listeners speak TLS (`-Z`).
//!
//! Rules (see `docs/cluster.md`):
//! - On with `-Z` unless `-o cluster_tls=0` (peers reached on their
//!   `notls:` listeners); `cluster_tls=1` without `-Z` is refused.
//! - Peers are verified against `cluster_ca_cert`, else `ssl_ca_cert`. With
//!   neither, a node with peers configured refuses to start: the exchange is
//!   never sent unverified and never falls back to plain TCP.
//! - The node presents its own `ssl_chain_cert`/`ssl_key`, so peers that
//!   require client certificates (`ssl_verify_mode=2|3`) accept it.
//! - A peer's certificate must name the address the agent dials: the IP of
//!   its list entry when it has one, else its hostname.
//!
//! Certificate files are read at start-up and when the server's certificates
//! are reloaded (`SIGHUP`, `refresh_certs`), never otherwise; errors name the
//! file and the problem, never the content.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{ClusterSettings, TlsSettings};

/// How the agent secures its connections to peers.
pub struct PeerTls {
    settings: TlsSettings,
    /// The trust roots' file; `None` on a node that had no peer configured
    /// at start-up and no CA: its exchanges fail, saying why.
    ca: Option<PathBuf>,
    config: ArcSwapOption<ClientConfig>,
    /// Raised by each reload, so connections made before it are replaced.
    generation: AtomicU64,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("ca", &self.ca)
            .field("generation", &self.generation)
            .finish()
    }
}

/// The message for a node that would need to verify peers without a CA.
const NO_CA: &str = "the cluster exchange speaks TLS (-Z) and needs the CA that signs the peers' \
                     certificates: -o cluster_ca_cert=FILE (or ssl_ca_cert=FILE); \
                     -o cluster_tls=0 exchanges in clear with peers on notls: listeners";

impl PeerTls {
    /// Decides from the settings whether the exchange speaks TLS and loads
    /// what it needs. `has_peers`: a node file or `--join` is configured,
    /// so a missing CA is an error now rather than at the first exchange.
    pub fn from_settings(
        tls: &TlsSettings,
        cluster: &ClusterSettings,
        has_peers: bool,
    ) -> Result<Option<Arc<PeerTls>>, String> {
        if !cluster.tls.unwrap_or(tls.enabled) {
            return Ok(None);
        }
        if !tls.enabled {
            return Err("-o cluster_tls=1 needs -Z (the node presents its certificate)".into());
        }
        let ca = cluster.ca_cert.as_ref().or(tls.ca_cert.as_ref()).cloned();
        if ca.is_none() && has_peers {
            return Err(NO_CA.into());
        }
        let peer = PeerTls {
            settings: tls.clone(),
            ca,
            config: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
        };
        let loaded = peer.load_files()?;
        peer.install(loaded);
        Ok(Some(Arc::new(peer)))
    }

    /// Reads the files again, for [`PeerTls::install`]; nothing changes
    /// until then. `None` without a CA (nothing to load).
    pub fn load_files(&self) -> Result<Option<Arc<ClientConfig>>, String> {
        match &self.ca {
            Some(ca) => client_config(&self.settings, ca).map(|c| Some(Arc::new(c))),
            None => Ok(None),
        }
    }

    /// Uses what [`PeerTls::load_files`] read; connections made before are
    /// replaced at their next exchange.
    pub fn install(&self, loaded: Option<Arc<ClientConfig>>) {
        if let Some(config) = loaded {
            self.config.store(Some(config));
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The configuration for a new connection, and its generation.
    pub fn config(&self) -> io::Result<(Arc<ClientConfig>, u64)> {
        let generation = self.generation();
        match self.config.load_full() {
            Some(c) => Ok((c, generation)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no CA to verify peers with: {NO_CA}"),
            )),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Trust roots from `ca`, this node's chain and key as client certificate,
/// the protocol versions of `ssl_min_version`.
fn client_config(s: &TlsSettings, ca: &Path) -> Result<ClientConfig, String> {
    let what = "cluster TLS: cannot read the CA file";
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| err(what, ca, e))? {
        let c = c.map_err(|e| err(what, ca, e))?;
        roots
            .add(c)
            .map_err(|e| err("cluster TLS: bad CA certificate in", ca, e))?;
    }
    if roots.is_empty() {
        return Err(err("cluster TLS: no CA certificate in", ca, "empty file"));
    }
    let chain = s
        .chain_cert
        .as_ref()
        .ok_or("-Z needs a certificate: -o ssl_chain_cert=FILE")?;
    let what = "cluster TLS: cannot read the certificate chain";
    let certs = CertificateDer::pem_file_iter(chain)
        .map_err(|e| err(what, chain, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(what, chain, e))?;
    if certs.is_empty() {
        return Err(err("cluster TLS: no certificate in", chain, "empty chain"));
    }
    let key_path = s.key.as_ref().unwrap_or(chain);
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| err("cluster TLS: cannot read the private key", key_path, e))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if s.min_version >= 3 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("cluster TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("cluster TLS: certificate and key do not match: {e}"))
}
