//! API keys: `Authorization: Bearer <key>`.

use herald_protocol::ErrorCode;
use http::{header, Request};

use crate::reply::ApiError;

/// Admits `req` when `keys` is empty or its bearer key is one of them.
///
/// # Errors
/// [`ErrorCode::Unauthorized`] when the header is missing or the key is wrong.
pub fn authorize<B>(req: &Request<B>, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing 'Authorization: Bearer <key>'",
        ));
    };
    // Compare with every key, in constant time per key, so timing tells nothing.
    let matched = keys.iter().fold(false, |found, key| {
        found | constant_time_eq(given.as_bytes(), key.as_bytes())
    });
    if matched {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Unauthorized, "wrong API key"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
        let req = |auth: Option<&str>| {
            let mut b = Request::builder();
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(()).unwrap()
        };
        let keys = vec!["k1".to_string(), "k2".to_string()];
        assert!(authorize(&req(Some("Bearer k2")), &keys).is_ok());
        assert!(authorize(&req(Some("Bearer k3")), &keys).is_err());
        assert!(authorize(&req(Some("k1")), &keys).is_err());
        assert!(authorize(&req(None), &keys).is_err());
        assert!(authorize(&req(None), &[]).is_ok());
    }
}
