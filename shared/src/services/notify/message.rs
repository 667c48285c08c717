//! What a notification says to each kind of target, as an [`Outbound`]
//! request: a generic webhook signed by the Standard Webhooks specification,
//! a Slack incoming-webhook Block Kit message, or GitHub's
//! `repository_dispatch`.
//!
//! Signing is HMAC-SHA256 over `{id}.{timestamp}.{body}` with `hmac` and
//! `sha2` (already here for GitHub's webhook signatures) rather than the
//! `standardwebhooks` crate: that crate signs the same three lines with one
//! secret per instance and would add a second `base64` and the `time`
//! crate. The test receivers verify with the independent Python
//! implementation (shared/tests/receivers/standard_webhooks_receiver.py).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::domain::{Notification, RepoName, RuleEvent, TargetSecrets, Timestamp};
use crate::ports::Outbound;

/// `repository_dispatch`'s `event_type` when the rule names none.
pub const DEFAULT_EVENT_TYPE: &str = "octoscope";
/// GitHub's limit on `client_payload`'s top-level keys.
pub const MAX_CLIENT_PAYLOAD_KEYS: usize = 10;

/// Why a message could not be made: the rule's own fault, so retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the webhook target has no signing secret")]
    NoSecret,
    /// Which secret (0: the newest), never its value.
    #[error("signing secret {0} is not whsec_ and base64")]
    BadSecret(usize),
}

/// Standard Webhooks: the body, `{"type", "timestamp", "data"}`; `data` is
/// the transition's fields with `late`, `rule_id` and `notification_id`.
pub fn webhook_body(note: &Notification) -> Value {
    let mut data = match &note.data {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other.clone())]),
    };
    data.insert("late".into(), Value::Bool(note.late));
    data.insert("rule_id".into(), Value::String(note.rule_id.to_string()));
    data.insert("notification_id".into(), Value::String(note.id.to_string()));
    json!({
        "type": note.event.as_str(),
        "timestamp": note.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
    })
}

/// One Standard Webhooks signature, `v1,<base64 HMAC-SHA256>` of
/// `{id}.{timestamp}.{body}`, keyed with the base64 after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok().filter(|k| !k.is_empty())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, space-separated
/// (during a rotation a receiver holding either secret verifies).
pub fn signature_header(
    secrets: &TargetSecrets,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MessageError> {
    if secrets.0.is_empty() {
        return Err(MessageError::NoSecret);
    }
    let sigs = secrets
        .0
        .iter()
        .enumerate()
        .map(|(i, s)| sign(s, id, timestamp, body).ok_or(MessageError::BadSecret(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sigs.join(" "))
}

/// The signed webhook request: `webhook-id` is the notification's id (the
/// same on every retry, so receivers can dedupe), `webhook-timestamp` is
/// when it is sent.
pub fn webhook(
    note: &Notification,
    url: &str,
    secrets: &TargetSecrets,
    now: Timestamp,
) -> Result<Outbound, MessageError> {
    let body = serde_json::to_vec(&webhook_body(note)).expect("a JSON value serialises");
    let ts = now.timestamp();
    let signature = signature_header(secrets, note.id.as_str(), ts, &body)?;
    Ok(Outbound {
        url: url.to_owned(),
        headers: vec![
            ("webhook-id".into(), note.id.to_string()),
            ("webhook-timestamp".into(), ts.to_string()),
            ("webhook-signature".into(), signature),
        ],
        body,
    })
}

fn s<'a>(data: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| data.get(*k).and_then(Value::as_str)).filter(|v| !v.is_empty())
}

fn n(data: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| data.get(*k).and_then(Value::as_u64))
}

/// A sha shortened for text.
fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// An absolute `https://` URL from the data (links in a message are never
/// anything else).
fn https_url(data: &Value, keys: &[&str]) -> Option<String> {
    s(data, keys).filter(|u| u.starts_with("https://")).map(str::to_owned)
}

/// The repository a notification is about, from its data (`repo` or `repository`).
pub fn repo_of(note: &Notification) -> Option<RepoName> {
    s(&note.data, &["repo", "repository"]).and_then(|r| RepoName::parse(r).ok())
}

/// The event in words, plain text (Slack's fallback `text`; escaped for mrkdwn by the caller).
pub fn describe(note: &Notification) -> String {
    let d = &note.data;
    let repo = s(d, &["repo", "repository"]).unwrap_or("a repository");
    let branch = s(d, &["branch"]);
    let on_branch = branch.map(|b| format!(" on {b}")).unwrap_or_default();
    let pr = |verb: &str| {
        let num = n(d, &["number"]).map(|x| format!(" #{x}")).unwrap_or_default();
        let title = s(d, &["title"]).map(|t| format!(": {t}")).unwrap_or_default();
        format!("Pull request{num} {verb} in {repo}{title}")
    };
    let workflow = s(d, &["workflow", "workflow_name", "name"]).unwrap_or("A workflow");
    let mut text = match note.event {
        RuleEvent::BranchMoved => {
            let to = s(d, &["after", "sha", "head_sha"]).map(|x| format!(" to {}", short(x))).unwrap_or_default();
            let commits = n(d, &["commit_count"])
                .or_else(|| d.get("commits").and_then(Value::as_array).map(|a| a.len() as u64))
                .map(|c| format!(" ({c} commit{})", if c == 1 { "" } else { "s" }))
                .unwrap_or_default();
            format!("Branch {} of {repo} moved{to}{commits}", branch.unwrap_or("?"))
        }
        RuleEvent::PullRequestOpened => pr("opened"),
        RuleEvent::PullRequestMerged => pr("merged"),
        RuleEvent::WorkflowRunFailed => {
            let broke =
                if d.get("broke").and_then(Value::as_bool) == Some(true) { " (it passed before: broke)" } else { "" };
            format!("{workflow} failed{on_branch} in {repo}{broke}")
        }
        RuleEvent::WorkflowRunRecovered => format!("{workflow} passes again{on_branch} in {repo}"),
        RuleEvent::DeploymentFailed => {
            let env = s(d, &["environment"]).map(|e| format!(" to {e}")).unwrap_or_default();
            format!("Deployment{env} failed in {repo}")
        }
        RuleEvent::ReviewPickupBreached => {
            let hours = n(d, &["hours"]).map(|h| format!(" for {h} h")).unwrap_or_default();
            format!("{} has had no review{hours}", pr("open").replacen(" open in", " in", 1))
        }
        RuleEvent::CiQueueTimeRegressed => {
            let label = s(d, &["label"]).map(|l| format!(" for {l}")).unwrap_or_default();
            let p90 = n(d, &["p90_seconds"]).map(|x| format!(" is {x} s")).unwrap_or_else(|| " is high".into());
            let limit = n(d, &["threshold_seconds"]).map(|x| format!(" (threshold {x} s)")).unwrap_or_default();
            format!("CI queue time p90{label}{p90}{limit}")
        }
        RuleEvent::IntegrityGapsFound => {
            let gaps = n(d, &["gaps", "count"]).map(|x| format!(" {x}")).unwrap_or_default();
            format!("The integrity check found{gaps} gaps: the data is in doubt")
        }
        RuleEvent::ResyncFailed => {
            let why = s(d, &["error", "reason"]).map(|e| format!(": {e}")).unwrap_or_default();
            format!("A resync failed{why}")
        }
        RuleEvent::Test => format!("Test notification from Octoscope (rule {})", note.rule_id),
    };
    if note.late {
        text.push_str(" (found late, by the integrity check)");
    }
    text
}

/// Slack's mrkdwn escaping of user text: `&`, `<`, `>`.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack link `<url|label>`: a URL with `|`, `<` or `>` is left out.
fn slack_link(url: &str, label: &str) -> Option<String> {
    (!url.contains(['|', '<', '>', ' '])).then(|| format!("<{url}|{}>", slack_escape(label)))
}

/// Links back to GitHub (the pull request, the commit, the run) and the dashboard.
pub fn links(note: &Notification, dashboard: Option<&str>) -> Vec<(String, String)> {
    let d = &note.data;
    let mut out = Vec::new();
    let repo = repo_of(note);
    if let Some(repo) = &repo {
        if let Some(num) = n(d, &["number", "pull_request"]) {
            out.push((format!("https://github.com/{repo}/pull/{num}"), format!("{repo}#{num}")));
        }
        if let Some(sha) = s(d, &["after", "sha", "head_sha"]).filter(|x| x.bytes().all(|b| b.is_ascii_hexdigit())) {
            out.push((format!("https://github.com/{repo}/commit/{sha}"), format!("commit {}", short(sha))));
        }
    }
    let label = match note.event {
        RuleEvent::BranchMoved => "changes",
        RuleEvent::WorkflowRunFailed | RuleEvent::WorkflowRunRecovered => "workflow run",
        RuleEvent::DeploymentFailed => "deployments",
        _ => "on GitHub",
    };
    if let Some(url) = https_url(d, &["run_url", "url", "html_url"]).filter(|u| !out.iter().any(|(o, _)| o == u)) {
        out.push((url, label.into()));
    }
    if let Some(base) = dashboard.map(|b| b.trim_end_matches('/')).filter(|b| !b.is_empty()) {
        out.push((format!("{base}/#/notifications?rule={}", note.rule_id), "Octoscope".into()));
    }
    out
}

/// The Slack message: `text` (the fallback for notifications) and
/// `blocks`: a header, the event in words, and the links.
pub fn slack_body(note: &Notification, dashboard: Option<&str>) -> Value {
    // Slack takes 3,000 characters in a section; the fallback is the same text.
    let text = truncate_escaped(&slack_escape(&describe(note)), 3000);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(note.event.as_str(), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": &text}}),
    ];
    let links: Vec<String> = links(note, dashboard).iter().filter_map(|(u, l)| slack_link(u, l)).collect();
    if !links.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": links.join("  ·  ")}]}));
    }
    json!({"text": text, "blocks": blocks})
}

/// [`truncate`] for escaped text: a cut never splits an escape (`&amp;`,
/// `&lt;`, `&gt;`), which Slack would show as a stray `&`.
fn truncate_escaped(text: &str, max_chars: usize) -> String {
    let mut t = truncate(text, max_chars);
    if let Some(kept) = t.strip_suffix('…')
        && let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        t.truncate(amp);
        t.push('…');
    }
    t
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut t: String = text.chars().take(max_chars - 1).collect();
    t.push('…');
    t
}

/// The Slack request (unsigned: the incoming-webhook URL is the credential).
pub fn slack(note: &Notification, url: &str, dashboard: Option<&str>) -> Outbound {
    Outbound {
        url: url.to_owned(),
        headers: vec![],
        body: serde_json::to_vec(&slack_body(note, dashboard)).expect("a JSON value serialises"),
    }
}

/// `client_payload`: at most [`MAX_CLIENT_PAYLOAD_KEYS`] top-level keys —
/// the event, its ids, `late`, and the transition's fields under `data`.
pub fn dispatch_payload(note: &Notification) -> Value {
    json!({
        "event": note.event.as_str(),
        "notification_id": note.id.as_str(),
        "rule_id": note.rule_id.as_str(),
        "transition": note.transition_key,
        "occurred_at": note.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "late": note.late,
        "data": note.data,
    })
}

/// `POST {github_api}/repos/{owner}/{repo}/dispatches` with the given token.
pub fn repository_dispatch(
    note: &Notification,
    repo: &RepoName,
    event_type: Option<&str>,
    github_api: &str,
    token: &str,
) -> Outbound {
    let body = json!({
        "event_type": event_type.filter(|e| !e.is_empty()).unwrap_or(DEFAULT_EVENT_TYPE),
        "client_payload": dispatch_payload(note),
    });
    Outbound {
        url: format!("{}/repos/{}/{}/dispatches", github_api.trim_end_matches('/'), repo.owner(), repo.name()),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("accept".into(), "application/vnd.github+json".into()),
            ("x-github-api-version".into(), "2022-11-28".into()),
        ],
        body: serde_json::to_vec(&body).expect("a JSON value serialises"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RuleId, Transition};

    fn note(event: RuleEvent, data: Value, late: bool) -> Notification {
        let t = Transition {
            event,
            key: "k".into(),
            repo: None,
            branch: None,
            author: None,
            environment: None,
            occurred_at: "2026-12-04T10:00:00Z".parse().unwrap(),
            late,
            data,
        };
        Notification::decide(&RuleId::generate(), &t, "2026-12-04T10:00:01Z".parse().unwrap())
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The specification's example (standard-webhooks spec, "Signature scheme").
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert!(sign("whsec_not base64!", "id", 1, b"").is_none());
        let two = TargetSecrets(vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), "whsec_AAAA".into()]);
        let h = signature_header(&two, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#).unwrap();
        assert_eq!(h.split(' ').count(), 2);
        assert!(h.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"));
        assert_eq!(signature_header(&TargetSecrets::default(), "i", 1, b""), Err(MessageError::NoSecret));
        let bad = TargetSecrets(vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), "whsec_%%".into()]);
        assert_eq!(signature_header(&bad, "i", 1, b""), Err(MessageError::BadSecret(1)));
    }

    #[test]
    fn the_webhook_body_carries_the_data_and_the_ids() {
        let x = note(RuleEvent::PullRequestMerged, json!({"repo": "acme/api", "number": 42, "late": "spoof"}), true);
        let b = webhook_body(&x);
        assert_eq!(b["type"], "pull_request.merged");
        assert_eq!(b["timestamp"], "2026-12-04T10:00:00Z");
        assert_eq!(b["data"]["number"], 42);
        assert_eq!(b["data"]["late"], true);
        assert_eq!(b["data"]["notification_id"], x.id.as_str());
        assert_eq!(b["data"]["rule_id"], x.rule_id.as_str());
        let out =
            webhook(&x, "https://h/", &TargetSecrets::generate(), "2026-12-04T10:05:00Z".parse().unwrap()).unwrap();
        let h = |k: &str| out.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(h("webhook-id"), x.id.as_str());
        assert_eq!(h("webhook-timestamp"), "1796378700");
    }

    #[test]
    fn slack_messages_escape_user_text_and_link_back() {
        let x = note(
            RuleEvent::PullRequestMerged,
            json!({"repo": "acme/api", "number": 42, "title": "Fix <script> & <!channel>", "sha": "0123456789abcdef"}),
            false,
        );
        let b = slack_body(&x, Some("https://octo.example/"));
        let text = b["text"].as_str().unwrap();
        assert_eq!(text, "Pull request #42 merged in acme/api: Fix &lt;script&gt; &amp; &lt;!channel&gt;");
        let all = b.to_string();
        assert!(all.contains("<https://github.com/acme/api/pull/42|acme/api#42>"), "{all}");
        assert!(all.contains("<https://github.com/acme/api/commit/0123456789abcdef|commit 0123456>"), "{all}");
        assert!(all.contains(&format!("<https://octo.example/#/notifications?rule={}|Octoscope>", x.rule_id)), "{all}");
        assert!(!all.contains("<script>") && !all.contains("<!channel>"));
        let run = note(
            RuleEvent::WorkflowRunFailed,
            json!({"repo": "acme/api", "branch": "main", "workflow": "CI", "broke": true,
                   "url": "https://github.com/acme/api/actions/runs/7", "html_url": "javascript:alert(1)"}),
            true,
        );
        let b = slack_body(&run, None);
        assert_eq!(
            b["text"],
            "CI failed on main in acme/api (it passed before: broke) (found late, by the integrity check)"
        );
        assert!(b.to_string().contains("<https://github.com/acme/api/actions/runs/7|workflow run>"));
        assert!(!b.to_string().contains("javascript:"));
    }

    #[test]
    fn a_long_slack_text_is_cut_to_3000_characters_between_escapes() {
        let prefix = "Pull request #1 merged in acme/api: ".chars().count();
        // Place an `&` so that its escape straddles the 3,000th character.
        for pad in 2990..3000 {
            let title = format!("{}&{}", "a".repeat(pad - prefix), "b".repeat(5000));
            let x = note(RuleEvent::PullRequestMerged, json!({"repo": "acme/api", "number": 1, "title": title}), false);
            let b = slack_body(&x, None);
            let text = b["text"].as_str().unwrap();
            assert_eq!(b["blocks"][1]["text"]["text"], text, "the section is the fallback text");
            assert!(text.chars().count() <= 3000, "{} characters", text.chars().count());
            let kept = text.strip_suffix('…').expect("cut short");
            for (i, _) in kept.match_indices('&') {
                assert!(kept[i..].starts_with("&amp;"), "a split escape at {pad}: {:?}", &kept[i..]);
            }
        }
    }

    #[test]
    fn a_dispatch_has_at_most_ten_payload_keys_and_the_token() {
        let x = note(RuleEvent::BranchMoved, json!({"repo": "acme/api", "branch": "main", "after": "abc"}), false);
        let repo = RepoName::parse("acme/deploy").unwrap();
        let out = repository_dispatch(&x, &repo, None, "https://api.github.com/", "tok");
        assert_eq!(out.url, "https://api.github.com/repos/acme/deploy/dispatches");
        let b: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(b["event_type"], DEFAULT_EVENT_TYPE);
        assert!(b["client_payload"].as_object().unwrap().len() <= MAX_CLIENT_PAYLOAD_KEYS);
        assert_eq!(b["client_payload"]["data"]["after"], "abc");
        assert!(out.headers.contains(&("authorization".into(), "Bearer tok".into())));
    }
}
