//! `POST /webhook`: GitHub's deliveries, verified, recorded once, normalised.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, ErrorBody, WebhookState};
use crate::domain::DeliveryStatus;
use crate::services::{Ingested, WebhookRequest};

/// What became of a delivery. Fields in the order the endpoint has always sent
/// them; the ones a status has no use for are left out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct WebhookReply {
    /// Writes that changed the store (`stored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<u32>,
    /// What the first delivery with this id became (`duplicate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_outcome: Option<DeliveryStatus>,
    /// Why nothing was kept (`ignored`, `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Writes older than what the store held (`stored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u32>,
    status: WebhookStatus,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum WebhookStatus {
    Stored,
    Duplicate,
    Ignored,
    Failed,
}

impl WebhookReply {
    fn new(status: WebhookStatus) -> Self {
        Self { applied: None, first_outcome: None, reason: None, skipped: None, status }
    }
}

/// The form GitHub sends when a webhook is set to `application/x-www-form-urlencoded`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the request body; the ingest service parses it
pub(super) struct WebhookForm {
    /// The event's JSON.
    payload: String,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Receive a GitHub webhook delivery
///
/// Verified with X-Hub-Signature-256 (HMAC-SHA256 of the raw body) before anything else; exactly once per (X-GitHub-Hook-ID, X-GitHub-Delivery). Not under /api: no bearer token.
#[utoipa::path(
    post,
    path = "/webhook",
    params(
        ("X-GitHub-Event" = String, Header, description = "the event type, e.g. pull_request"),
        ("X-GitHub-Delivery" = String, Header, description = "GitHub's id of the delivery, kept by its redeliveries"),
        ("X-GitHub-Hook-ID" = Option<String>, Header, description = "the webhook configuration that sent it"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=HEX: HMAC-SHA256 of the raw body with the webhook secret"),
    ),
    request_body(content(
        (serde_json::Value = "application/json"),
        (WebhookForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "stored, or a duplicate with no effect", body = WebhookReply),
        (status = 202, description = "an untracked event (ignored) or a payload not understood (failed); archived", body = WebhookReply),
        (status = 400, description = "not JSON, or a required header missing", body = ErrorBody),
        (status = 401, description = "missing or wrong signature", body = ErrorBody),
        (status = 413, description = "body larger than the limit", body = ErrorBody),
        (status = 503, description = "not durably recorded; GitHub may redeliver", body = ErrorBody),
        (status = 500, description = "not durably recorded", body = ErrorBody),
    ),
    security(),
)]
pub(super) async fn webhook(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.max_body_bytes)
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let req = WebhookRequest {
        event: header_str(&headers, "x-github-event"),
        delivery: header_str(&headers, "x-github-delivery"),
        hook_id: header_str(&headers, "x-github-hook-id"),
        signature: headers.get("x-hub-signature-256").map(HeaderValue::as_bytes),
        content_type: header_str(&headers, "content-type"),
        body: &body,
    };
    let (status, reply) = match state.ingest.ingest(req).await? {
        Ingested::Stored { applied, skipped } => (
            StatusCode::OK,
            WebhookReply { applied: Some(applied), skipped: Some(skipped), ..WebhookReply::new(WebhookStatus::Stored) },
        ),
        Ingested::Duplicate(first) => {
            (StatusCode::OK, WebhookReply { first_outcome: Some(first), ..WebhookReply::new(WebhookStatus::Duplicate) })
        }
        Ingested::Ignored { reason } => {
            (StatusCode::ACCEPTED, WebhookReply { reason: Some(reason), ..WebhookReply::new(WebhookStatus::Ignored) })
        }
        Ingested::Failed { reason } => {
            (StatusCode::ACCEPTED, WebhookReply { reason: Some(reason), ..WebhookReply::new(WebhookStatus::Failed) })
        }
    };
    Ok((status, Json(reply)).into_response())
}
