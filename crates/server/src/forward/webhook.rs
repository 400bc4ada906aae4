//! A generic webhook: `POST` of `{"events":[…]}`, each event's JSON with its
//! `id` (unique per database, the receiver's key to drop a redelivery),
//! signed with HMAC-SHA256 over the exact body bytes.

use super::Forwardable;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header: `sha256=` and the hex HMAC of the body.
pub const SIGNATURE_HEADER: &str = "X-Ldguard-Signature-256";
/// Names the delivery: the same batch redelivered has the same id.
pub const DELIVERY_HEADER: &str = "X-Ldguard-Delivery";

pub fn encode(events: &[Forwardable]) -> Vec<u8> {
    let lines: Vec<&serde_json::Value> = events.iter().map(|f| f.line()).collect();
    serde_json::to_vec(&serde_json::json!({ "events": lines })).unwrap_or_default()
}

/// `sha256=HEX` for `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
