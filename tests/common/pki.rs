//! A throwaway certificate authority for the TLS tests (rcgen). Standalone,
//! so that test files without the harness can include it by path.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    /// The CA certificate, as clients load it.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf signed by this CA for `names` (DNS names or IP addresses,
    /// which become IP SANs) and `purposes`: (certificate PEM, key PEM).
    pub fn leaf(&self, names: &[&str], purposes: &[ExtendedKeyUsagePurpose]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "ferrocache test");
        p.extended_key_usages = purposes.to_vec();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
