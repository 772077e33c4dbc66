//! HTTP responses, and the mapping of API errors to statuses (the one place it is done).

use bytes::Bytes;
use herald_protocol::ErrorCode;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// A failed API request: the status, and the protocol error code and message in the body.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The protocol error code in the body.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
}

impl ApiError {
    /// An error with the status that `code` maps to.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidChannel | ErrorCode::UnknownNamespace => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Uncertain => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PositionLost => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404: no route has this path.
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::new(ErrorCode::BadRequest, "no such route")
        }
    }

    /// 405: the route exists, not with this method.
    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            ..Self::new(ErrorCode::BadRequest, "method not allowed on this route")
        }
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON response.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The response for a failed request: `{"error":{"code":..,"message":..}}` with its status.
pub fn error(e: ApiError) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": {"code": e.code.code(), "message": e.message}});
    let mut r = json(e.status, &body);
    if e.status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Prometheus text exposition.
pub fn metrics(rendered: String) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::OK, rendered);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
