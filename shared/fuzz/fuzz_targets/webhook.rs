//! `POST /webhook` through the whole `Router`: headers and body from the
//! fuzzer, verify → parse → normalise → store on a temporary SQLite.
//!
//! Input: line 1 the `X-GitHub-Event` header (empty: absent); line 2 options,
//! one character each (`u` unsigned, `x` a wrong signature, `r` the previous
//! delivery's id again, `d` no `X-GitHub-Delivery`, `n` no `X-GitHub-Hook-ID`,
//! `f` sent as a form, `t` text/plain); the rest is the body. Most inputs are
//! signed with the server's secret, so the fuzzer gets past verification.
//!
//! The ledger's key is the hook and the delivery id together (`DeliveryKey`):
//! the previous delivery's id sent again under the other hook (with `n`
//! where the first had none, or the reverse) is a new delivery, unless that
//! key was taken earlier (the id went under one hook, then the other, then
//! back). So the harness keeps every key the ledger took, not only the last.
//!
//! Invariants: never a 5xx; a 2xx only when the delivery is in the ledger,
//! counted once (a new delivery adds exactly one ledger row, a duplicate none);
//! a fresh delivery key is never called a duplicate; an unsigned or wrongly
//! signed request is a 401 and leaves the ledger as it was; any other refusal
//! leaves it as it was too.
#![no_main]

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use octoscope::domain::{DeliveryId, DeliveryKey, HookId};
use octoscope::ports::{CompletenessStore, ReadModel};
use octoscope::webhook::sign;
use octoscope_fuzz::{App, SECRET, line, runtime};

/// A fresh store every so many inputs, so that long runs do not slow down as it grows.
const INPUTS_PER_STORE: u64 = 4096;
const HOOK: &str = "4242";

struct State {
    app: App,
    inputs: u64,
    /// The delivery id of the last delivery the ledger took (what `r` sends again).
    last_delivery: Option<DeliveryId>,
    /// Every key the ledger took since this store was made.
    taken: HashSet<DeliveryKey>,
}

impl State {
    fn new(inputs: u64) -> Self {
        Self { app: App::new(), inputs, last_delivery: None, taken: HashSet::new() }
    }
}

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().unwrap();
    let state = guard.get_or_insert_with(|| State::new(0));
    state.inputs += 1;
    if state.inputs % INPUTS_PER_STORE == 0 {
        *state = State::new(state.inputs);
    }
    RT.block_on(run(state, data));
});

async fn run(state: &mut State, data: &[u8]) {
    let (event, rest) = line(data);
    let (options, body) = line(rest);
    let has = |c: u8| options.contains(&c);

    let delivery_id = match state.last_delivery.as_ref().filter(|_| has(b'r')) {
        Some(last) => last.clone(),
        None => DeliveryId::parse(&format!("00000000-0000-4000-8000-{:012}", state.inputs)).unwrap(),
    };
    let delivery = delivery_id.as_str().to_owned();
    let hook_id = if has(b'n') { HookId::unknown() } else { HookId::parse(HOOK).unwrap() };
    let key = DeliveryKey { hook_id, delivery_id };
    // A repeat is a key the ledger took before (a fresh id never is).
    let repeat = state.taken.contains(&key);
    let mut req = Request::post("/webhook");
    if !event.is_empty() {
        req = req.header("x-github-event", event);
    }
    if !has(b'd') {
        req = req.header("x-github-delivery", delivery.as_str());
    }
    if !has(b'n') {
        req = req.header("x-github-hook-id", HOOK);
    }
    let content_type = if has(b'f') {
        "application/x-www-form-urlencoded"
    } else if has(b't') {
        "text/plain"
    } else {
        "application/json"
    };
    req = req.header("content-type", content_type);
    let unsigned = has(b'u');
    let wrong = has(b'x');
    if !unsigned {
        let secret = if wrong { "another-secret" } else { SECRET };
        req = req.header("x-hub-signature-256", sign(secret, body));
    }
    // An event header that is not a valid header value cannot be sent at all.
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };

    let before = ledger_rows(&state.app).await;
    let (resp, reply) = state.app.send(req).await;
    let after = ledger_rows(&state.app).await;
    let status = resp.status();

    assert!(!status.is_server_error(), "{status} for outside input: {}", String::from_utf8_lossy(&reply));
    if unsigned || wrong {
        assert_eq!(status.as_u16(), 401, "a request without the right signature was not refused");
    }
    if !status.is_success() {
        assert_eq!(before, after, "a refused delivery ({status}) changed the ledger");
        return;
    }
    let reply: serde_json::Value = serde_json::from_slice(&reply).expect("a 2xx reply is JSON");
    let outcome = reply["status"].as_str().expect("a 2xx reply has a status");
    let known = state.app.store.known_deliveries(std::slice::from_ref(&key)).await.expect("ledger lookup");
    assert_eq!(known, vec![true], "{status} {outcome} but the delivery is not in the ledger");
    if outcome == "duplicate" {
        assert!(repeat, "a fresh delivery key was answered as a duplicate");
        assert_eq!(before, after, "a duplicate added a ledger row");
    } else {
        // A delivery taken up again (a retryable failure) keeps its one row.
        let expected = if repeat { before } else { before + 1 };
        assert_eq!(after, expected, "a delivery ({outcome}) is not in the ledger exactly once");
        state.last_delivery = Some(key.delivery_id.clone());
        state.taken.insert(key);
    }
}

/// Every delivery the ledger holds, whatever became of it.
async fn ledger_rows(app: &App) -> u64 {
    app.store.stats().await.expect("stats").deliveries.values().sum()
}
