//! The service's errors as HTTP answers: a status code and a JSON body
//! `{"error": {"code": "...", "message": "..."}}` that says what is wrong and what to do.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cxr_core::DecodeErrorKind;
use serde_json::json;

/// An API failure; `code` is stable for programs, `message` is for people.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds a client should wait before retrying (503 when the queue is full).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            message,
        )
    }

    pub fn busy(retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the screening queue is full; retry shortly",
            )
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// An upload that could not be decoded: 413 when too large, 415 when not an image
    /// format we read, 422 when the bytes are an image we cannot use.
    pub fn from_decode(kind: &DecodeErrorKind, message: String) -> Self {
        let (status, code) = match kind {
            DecodeErrorKind::FileTooLarge { .. } | DecodeErrorKind::TooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "image-too-large")
            }
            DecodeErrorKind::UnknownFormat => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-an-image"),
            DecodeErrorKind::Empty => (StatusCode::BAD_REQUEST, "empty-upload"),
            DecodeErrorKind::TooSmall { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "image-too-small")
            }
            DecodeErrorKind::Truncated { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "truncated-image")
            }
            DecodeErrorKind::NoPixelData => (StatusCode::UNPROCESSABLE_ENTITY, "no-pixel-data"),
            DecodeErrorKind::UnsupportedTransferSyntax { .. }
            | DecodeErrorKind::Unsupported { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unsupported-image")
            }
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "undecodable-image"),
        };
        Self::new(status, code, message)
    }

    /// The JSON body, also used for per-file errors inside a batch answer.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
