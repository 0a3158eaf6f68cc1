//! Webhook signatures (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`): HMAC-SHA256 of
//! `t.body` with the endpoint's secret, compared in constant time by `Mac::verify_slice`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a webhook's signed timestamp may be from our clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Why a webhook signature was refused (never shown in detail to the caller).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no webhook secret is configured")]
    NoSecret,
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Computes the `v1` signature of `payload` signed at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

/// Verifies a `Stripe-Signature` header over the raw body: any `v1` may match (secret
/// rotation), and `t` must be within the tolerance of `now`.
pub fn verify_signature(
    secret: Option<&str>,
    header: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::NoSecret)?;
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            // A v1 that is not hex cannot match; it is skipped like any other wrong one.
            Some(("v1", v)) => candidates.push(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, t, payload);
    let matches = candidates
        .iter()
        .flatten()
        .any(|c| expected.clone().verify_slice(c).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(t: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(t, 0).unwrap()
    }

    #[test]
    fn a_fresh_correct_signature_is_accepted_among_several() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec", 1000, body);
        let header = format!("t=1000,v1=deadbeef,v1=zz,v1={},v0=xyz", good.to_uppercase());
        assert_eq!(
            verify_signature(Some("whsec"), Some(&header), body, at(1100)),
            Ok(())
        );
    }

    #[test]
    fn bad_stale_or_missing_signatures_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let good = format!("t=1000,v1={}", sign("whsec", 1000, body));
        let v = |secret, header: Option<&str>, body: &[u8], now| {
            verify_signature(secret, header, body, at(now))
        };
        assert_eq!(
            v(None, Some(&good), body, 1000),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            v(Some("whsec"), None, body, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v(Some("whsec"), Some("v1=abc"), body, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), body, 1301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), body, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            v(Some("other"), Some(&good), body, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), br#"{"id":"evt_2"}"#, 1000),
            Err(SignatureError::Mismatch)
        );
    }
}
