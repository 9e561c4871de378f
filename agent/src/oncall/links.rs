//! Signed acknowledgement links: `GET /ack/{incident}?exp=…&who=…&sig=…`.
//!
//! The signature is HMAC-SHA256 over `ack`, the incident id, the expiry (Unix
//! seconds) and who, with a secret only medic knows; changing any field breaks
//! it. The link carries no session: whoever holds it may acknowledge, as the
//! recipient it was made for, until it expires.

use sha2::{Digest, Sha256};

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The signature does not match the fields (or is malformed).
    Forged,
    /// Correctly signed but past its expiry.
    Expired,
}

/// Makes and checks acknowledgement links.
#[derive(Clone)]
pub struct AckSigner {
    secret: Vec<u8>,
    external_url: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for AckSigner {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSigner")
            .field("external_url", &self.external_url)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl AckSigner {
    /// With a secret, the URL medic is reached at, and the link lifetime.
    pub fn new(secret: Vec<u8>, external_url: &str, ttl: std::time::Duration) -> Self {
        AckSigner {
            secret,
            external_url: external_url.trim_end_matches('/').to_string(),
            ttl_secs: ttl.as_secs() as i64,
        }
    }

    /// medic's external URL (no trailing slash).
    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    fn sign(&self, incident: i64, exp: i64, who: &str) -> String {
        let msg = format!("ack\n{incident}\n{exp}\n{who}");
        hex(&hmac_sha256(&self.secret, msg.as_bytes()))
    }

    /// A link for `who`, valid for the configured lifetime from `now_secs`.
    pub fn link(&self, incident: i64, who: &str, now_secs: i64) -> String {
        let exp = now_secs + self.ttl_secs;
        format!(
            "{}/ack/{incident}?exp={exp}&who={}&sig={}",
            self.external_url,
            url_encode(who),
            self.sign(incident, exp, who)
        )
    }

    /// Check a link's fields. The comparison takes the same time wherever
    /// the signatures differ.
    pub fn verify(
        &self,
        incident: i64,
        exp: i64,
        who: &str,
        sig: &str,
        now_secs: i64,
    ) -> Result<(), LinkError> {
        let want = self.sign(incident, exp, who);
        if sig.len() != want.len() {
            return Err(LinkError::Forged);
        }
        let diff = want
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(LinkError::Forged);
        }
        if now_secs > exp {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// The secret: from `secret_env` or `secret_file` if configured, else a random
/// one generated once into `state_dir/ack-link.key` (mode 0600).
pub fn load_secret(
    cfg: &super::AckLinkConfig,
    base_dir: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<Vec<u8>, String> {
    if let Some(var) = &cfg.secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v.into_bytes()),
            _ => Err(format!(
                "ack_links.secret_env: environment variable {var} is not set"
            )),
        };
    }
    if let Some(f) = &cfg.secret_file {
        let p = base_dir.join(f);
        return std::fs::read(&p)
            .map(|b| b.trim_ascii().to_vec())
            .map_err(|e| format!("ack_links.secret_file {}: {e}", p.display()));
    }
    let p = state_dir.join("ack-link.key");
    if let Ok(b) = std::fs::read(&p)
        && !b.trim_ascii().is_empty()
    {
        return Ok(b.trim_ascii().to_vec());
    }
    let key = hex(&rand::random::<[u8; 32]>());
    write_private(&p, key.as_bytes()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(key.into_bytes())
}

fn write_private(p: &std::path::Path, b: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = p.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(b)?;
    f.sync_all()?;
    std::fs::rename(&tmp, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> AckSigner {
        AckSigner::new(
            b"k".to_vec(),
            "http://medic.example/",
            std::time::Duration::from_secs(3600),
        )
    }

    fn fields(link: &str) -> (i64, String, String) {
        let q = link.split_once('?').unwrap().1;
        let get = |k: &str| {
            q.split('&')
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        (get("exp").parse().unwrap(), get("who"), get("sig"))
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_long_key_is_hashed_first() {
        // RFC 4231 test case 6: a 131-byte key.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_link_verifies_until_it_expires() {
        let s = signer();
        let link = s.link(7, "ann@example.com", 1000);
        assert!(link.starts_with("http://medic.example/ack/7?exp=4600&who=ann%40example.com&sig="));
        let (exp, _, sig) = fields(&link);
        assert_eq!(s.verify(7, exp, "ann@example.com", &sig, 1000), Ok(()));
        assert_eq!(s.verify(7, exp, "ann@example.com", &sig, 4600), Ok(()));
        assert_eq!(
            s.verify(7, exp, "ann@example.com", &sig, 4601),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn changing_any_field_is_forgery() {
        let s = signer();
        let (exp, _, sig) = fields(&s.link(7, "ann", 1000));
        assert_eq!(s.verify(8, exp, "ann", &sig, 1000), Err(LinkError::Forged));
        assert_eq!(
            s.verify(7, exp + 1, "ann", &sig, 1000),
            Err(LinkError::Forged)
        );
        assert_eq!(s.verify(7, exp, "bob", &sig, 1000), Err(LinkError::Forged));
        assert_eq!(s.verify(7, exp, "ann", "00", 1000), Err(LinkError::Forged));
        let other = AckSigner::new(
            b"other".to_vec(),
            "http://x",
            std::time::Duration::from_secs(1),
        );
        assert_eq!(
            other.verify(7, exp, "ann", &sig, 1000),
            Err(LinkError::Forged)
        );
        // An expired forgery is reported as forged, not as expired.
        assert_eq!(s.verify(7, 10, "ann", &sig, 1000), Err(LinkError::Forged));
    }

    #[test]
    fn generated_secret_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("medic-links-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let cfg = crate::oncall::AckLinkConfig::default();
        let a = load_secret(&cfg, &d, &d).unwrap();
        let b = load_secret(&cfg, &d, &d).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(d.join("ack-link.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&d);
    }
}
