//! GitHub webhooks: verification, typed payloads, normalisation.

pub mod normalize;
pub mod payload;
pub mod verify;

pub use normalize::{NormalizeError, Normalized, TRACKED_EVENTS, is_tracked, normalize};
pub use verify::{SignatureError, WebhookSecrets, sign};

/// The JSON payload inside a body, whatever the hook's content type:
/// `application/json`, or `application/x-www-form-urlencoded` with the JSON in
/// the `payload` field (GitHub offers both).
pub fn json_payload<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, &'static str> {
    let is_form = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if !is_form {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| std::borrow::Cow::Owned(v.into_owned().into_bytes()))
        .ok_or("form-encoded body has no `payload` field")
}
