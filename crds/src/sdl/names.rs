//! Names the provider derives from a lease: the Kubernetes namespace of the lease and the automatic
//! ingress host name of a service.

use std::fmt;

use data_encoding::BASE32HEX_NOPAD;
use sha1::Sha1;
use sha2::{Digest, Sha224};

/// A lease id; its text form is `owner/dseq/gseq/oseq/provider` (Go `LeaseID.String()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseId {
    pub owner: String,
    pub dseq: u64,
    pub gseq: u32,
    pub oseq: u32,
    pub provider: String,
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.owner, self.dseq, self.gseq, self.oseq, self.provider
        )
    }
}

/// The RFC 4122 name space for DNS names, `6ba7b810-9dad-11d1-80b4-00c04fd430c8`.
const NAMESPACE_DNS: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// A version 5 (SHA-1, name-based) UUID.
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut hasher = Sha1::new();
    hasher.update(namespace);
    hasher.update(name);
    let digest = hasher.finalize();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x50;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

fn base32hex_lower(bytes: &[u8]) -> String {
    BASE32HEX_NOPAD.encode(bytes).to_lowercase()
}

/// The namespace of a lease: lowercase base32hex (no padding) of SHA-224 of the lease id text.
pub fn lease_namespace(lease: &LeaseId) -> String {
    base32hex_lower(&Sha224::digest(lease.to_string().as_bytes()))
}

/// The label of the automatic ingress host: lowercase base32hex (no padding) of the UUIDv5 (DNS name
/// space) of the lease id text followed directly by the service name.
pub fn ingress_label(lease: &LeaseId, service: &str) -> String {
    let name = format!("{lease}{service}");
    base32hex_lower(&uuid_v5(&NAMESPACE_DNS, name.as_bytes()))
}

/// The automatic ingress host name: `<label>.<ingress domain>`.
pub fn ingress_host(lease: &LeaseId, service: &str, domain: &str) -> String {
    format!("{}.{domain}", ingress_label(lease, service))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> LeaseId {
        LeaseId {
            owner: "akash1qqzwc5d7hynl67nsmn9jukvwqp3vzdl6j2t7lk".into(),
            dseq: 1234567,
            gseq: 1,
            oseq: 1,
            provider: "akash1q7spv2cw06yszgfp4f9ed59lkka6ytn8g4tkjf".into(),
        }
    }

    /// Expected value from Python:
    /// `base64.b32hexencode(hashlib.sha224(lid.encode()).digest()).decode().rstrip('=').lower()`
    /// with `lid = "akash1qqzwc5d7hynl67nsmn9jukvwqp3vzdl6j2t7lk/1234567/1/1/akash1q7spv2cw06yszgfp4f9ed59lkka6ytn8g4tkjf"`.
    #[test]
    fn lease_namespace_matches_an_independent_computation() {
        assert_eq!(
            lease_namespace(&lease()),
            "2v2so10nj7jfckuu6tim2jau6ug80cvtiqgo9lfgtq1ge"
        );
    }

    /// Expected values from Python: `u = uuid.uuid5(uuid.NAMESPACE_DNS, lid + "web")` gives
    /// `75f195bc-a07d-541d-b0f0-f9b59d5319ab`, and
    /// `base64.b32hexencode(u.bytes).decode().rstrip('=').lower()` gives the label.
    #[test]
    fn ingress_host_matches_an_independent_computation() {
        let uuid = uuid_v5(&NAMESPACE_DNS, format!("{}web", lease()).as_bytes());
        let text: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, "75f195bca07d541db0f0f9b59d5319ab");
        assert_eq!(
            ingress_host(&lease(), "web", "ingress.example.com"),
            "enopbf50fla1rc7gv6qpqkoplc.ingress.example.com"
        );
    }
}
