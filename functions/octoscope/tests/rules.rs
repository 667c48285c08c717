//! The real `octoscope rules` commands on a temporary data directory: add
//! (the secret printed once), list, test (a notification in the outbox),
//! remove, `--json` on each, and the API's checks refusing bad rules.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");

fn rules(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("rules").args(args).arg("--data-dir").arg(dir).env_remove("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok_json(out: Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn rules_are_added_listed_tested_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    // WHEN a rule is added THEN its id and signing secret are printed, once
    let added = ok_json(rules(
        dir.path(),
        &[
            "add",
            "--on",
            "pull_request.merged",
            "--repo",
            "acme/api",
            "--branch",
            "main",
            "--webhook",
            "https://hooks.example.com/octoscope",
            "--json",
        ],
        &[],
    ));
    let id = added["id"].as_str().unwrap().to_owned();
    let secret = added["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rul_") && secret.starts_with("whsec_"), "{added}");
    assert_eq!(added["on"], "pull_request.merged");
    assert_eq!(added["branch"], "main");
    let out =
        rules(dir.path(), &["add", "--on", "branch.moved", "--dispatch", "acme/ops", "--event-type", "deploy"], &[]);
    let (said, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(said.contains("added: branch.moved -> repository_dispatch acme/ops (deploy)"), "{said}");
    assert!(!said.contains("whsec_"), "no secret for a dispatch target: {said}");
    // THEN both are listed, without secrets
    let out = rules(dir.path(), &["list"], &[]);
    let (said, _) = text(&out);
    assert!(said.contains(&id) && said.contains("repo=acme/api branch=main"), "{said}");
    assert!(said.contains("0 delivered, 0 failed, 0 pending"), "{said}");
    let listed = ok_json(rules(dir.path(), &["list", "--json"], &[]));
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("whsec_"));
    // WHEN a test is sent THEN it is a pending notification of the rule in the outbox
    let note = ok_json(rules(dir.path(), &["test", &id, "--json"], &[]));
    assert_eq!(note["event"], "test");
    assert_eq!(note["status"], "pending");
    assert_eq!(note["rule_id"], id.as_str());
    let listed = ok_json(rules(dir.path(), &["list", "--json"], &[]));
    assert_eq!(listed["items"][0]["stats"]["pending"], 1);
    // WHEN it is removed THEN it is gone, and removing it again fails
    let removed = ok_json(rules(dir.path(), &["remove", &id, "--json"], &[]));
    assert_eq!(removed, serde_json::json!({"id": id, "removed": true}));
    let again = rules(dir.path(), &["remove", &id], &[]);
    assert!(!again.status.success());
    assert!(text(&again).1.contains("no rule"), "{}", text(&again).1);
    assert!(!rules(dir.path(), &["test", &id], &[]).status.success());
    assert_eq!(ok_json(rules(dir.path(), &["list", "--json"], &[]))["items"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_rules_are_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["add", "--on", "pull_request.exploded", "--webhook", "https://hooks.example.com/"], "unknown event"),
        (vec!["add", "--on", "branch.moved", "--repo", "nope", "--webhook", "https://hooks.example.com/"], "repo"),
        (vec!["add", "--on", "branch.moved", "--hours", "3", "--slack", "https://hooks.slack.com/x"], "hours"),
        (vec!["add", "--on", "branch.moved", "--webhook", "http://hooks.example.com/"], "http://"),
        (vec!["add", "--on", "branch.moved", "--webhook", "https://127.0.0.1/"], "127.0.0.1"),
        (vec!["add", "--on", "branch.moved", "--webhook", "https://169.254.169.254/"], "169.254.169.254"),
        (vec!["add", "--on", "branch.moved"], "--webhook"),
        (
            vec![
                "add",
                "--on",
                "branch.moved",
                "--webhook",
                "https://a.example.com/",
                "--slack",
                "https://b.example.com/",
            ],
            "cannot be used",
        ),
        (vec!["remove", "rul_nope"], "not a rule id"),
    ] {
        let out = rules(dir.path(), &args, &[]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // AND with private targets allowed, a local receiver is a target
    let out = rules(
        dir.path(),
        &["add", "--on", "branch.moved", "--webhook", "http://127.0.0.1:9/hook"],
        &[("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "1")],
    );
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn every_rules_command_has_help() {
    for sub in ["add", "list", "remove", "test"] {
        let out = Command::new(BIN).args(["rules", sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("--json"), "{sub}");
    }
}
