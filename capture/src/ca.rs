//! tapedeck's certificate authority for forward-proxy mode: created once
//! (`tapedeck ca init`), installed on the device (`tapedeck ca export`),
//! and used to mint a certificate per intercepted host on the fly.
//!
//! The CA is a key (`ca.key`, 0600) and a self-signed certificate
//! (`ca.pem`). To sign, only the CA's subject name, key-identifier method
//! and key are needed, so the in-memory issuer is rebuilt from the key and
//! the fixed subject; leaf certificates chain to the `ca.pem` on disk.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The CA certificate's file name inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name inside the CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";
const CA_COMMON_NAME: &str = "tapedeck capture CA";
const CA_ORGANIZATION: &str = "tapedeck";

/// The default CA directory: `$TAPEDECK_CA_DIR`, else `~/.tapedeck/ca`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TAPEDECK_CA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".tapedeck").join("ca")
}

/// A loaded CA, able to mint server certificates.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: rcgen::Certificate,
    issuer_key: KeyPair,
    leaf_key: KeyPair,
    minted: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = chrono::Utc::now();
    params.not_before = rcgen::date_time_ymd(now.year() - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(now.year() + 10, 1, 1);
    params
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Input {
        what: path.display().to_string(),
        why: e.to_string(),
    }
}

impl Ca {
    /// Creates a new CA in `dir`. Refuses to overwrite an existing one
    /// unless `force` (devices that trust the old one would stop working).
    pub fn init(dir: &Path, force: bool) -> Result<Ca, Error> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if !force && (cert_path.exists() || key_path.exists()) {
            return Err(Error::Input {
                what: key_path.display().to_string(),
                why: "a CA already exists here (devices may trust it); pass --force to replace it"
                    .into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let key =
            KeyPair::generate().map_err(|e| Error::Tls(format!("generating the CA key: {e}")))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(|e| Error::Tls(format!("signing the CA certificate: {e}")))?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, cert.pem()).map_err(|e| io_err(&cert_path, e))?;
        Ca::load(dir)
    }

    /// Loads the CA in `dir`; errors name the file and what is wrong.
    pub fn load(dir: &Path) -> Result<Ca, Error> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(|e| {
            io_err(
                &cert_path,
                format!(
                    "{e} (create the CA with `tapedeck ca init --dir {}`)",
                    dir.display()
                ),
            )
        })?;
        let cert_der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| io_err(&cert_path, "no PEM certificate in the file"))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(|e| io_err(&key_path, e))?;
        let issuer_key = KeyPair::from_pem(&key_pem)
            .map_err(|e| io_err(&key_path, format!("not a usable private key: {e}")))?;
        // The certificate must carry this key, or minted certificates would
        // not chain to what devices trust.
        let raw = issuer_key.public_key_raw();
        if !cert_der.windows(raw.len()).any(|w| w == raw) {
            return Err(io_err(
                &key_path,
                format!("this key does not belong to {}", cert_path.display()),
            ));
        }
        let issuer = ca_params()
            .self_signed(&issuer_key)
            .map_err(|e| io_err(&key_path, format!("cannot sign with this key: {e}")))?;
        let leaf_key =
            KeyPair::generate().map_err(|e| Error::Tls(format!("generating a host key: {e}")))?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_der,
            issuer,
            issuer_key,
            leaf_key,
            minted: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A TLS server configuration presenting a certificate for `host`
    /// signed by this CA (ALPN h2 and http/1.1), minted once per host.
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
        let host = host.to_ascii_lowercase();
        if let Some(c) = self.minted.lock().ok().and_then(|m| m.get(&host).cloned()) {
            return Ok(c);
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|e| Error::Tls(format!("host {host:?}: {e}")))?,
            ),
        }];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        // Apple platforms refuse server certificates valid for more than
        // 825 days; a year either side of today is plenty.
        let now = chrono::Utc::now();
        let yesterday = now - chrono::Duration::days(1);
        let next_year = now + chrono::Duration::days(365);
        params.not_before = rcgen::date_time_ymd(
            yesterday.year(),
            yesterday.month() as u8,
            yesterday.day() as u8,
        );
        params.not_after = rcgen::date_time_ymd(
            next_year.year(),
            next_year.month() as u8,
            next_year.day() as u8,
        );
        let leaf = params
            .signed_by(&self.leaf_key, &self.issuer, &self.issuer_key)
            .map_err(|e| Error::Tls(format!("minting a certificate for {host}: {e}")))?;
        let chain = vec![leaf.der().clone(), self.cert_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(crate::upstream::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::Tls(format!("certificate for {host}: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if let Ok(mut m) = self.minted.lock() {
            // Bounded: a proxy that sees many hosts re-mints rather than grows.
            if m.len() >= 10_000 {
                m.clear();
            }
            m.insert(host, config.clone());
        }
        Ok(config)
    }
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    // An existing file keeps its old mode through open(); force 0600.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_load_and_mint() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(Ca::init(dir.path(), false).is_err(), "no silent overwrite");
        let again = Ca::load(dir.path()).unwrap();
        assert_eq!(again.cert_der(), ca.cert_der());
        let a = again.server_config("api.corevia.app").unwrap();
        let b = again.server_config("API.corevia.app").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "cached per host");
        assert!(again.server_config("127.0.0.1").is_ok());
    }

    #[test]
    fn a_corrupt_or_foreign_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Ca::init(dir.path(), false).unwrap();
        let key = dir.path().join(CA_KEY_FILE);
        std::fs::write(&key, "garbage").unwrap();
        let err = Ca::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("ca.key"), "{err}");
        std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let err = Ca::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        let missing = tempfile::tempdir().unwrap();
        let err = Ca::load(missing.path()).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("tapedeck ca init"),
            "{err}"
        );
    }
}
