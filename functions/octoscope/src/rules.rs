//! `octoscope rules add|list|remove|test`: notification rules on the data
//! directory's store, checked as the API checks them (`api::notify`), printed
//! as text or, with `--json`, as the API answers.

use std::path::Path;

use anyhow::Context as _;
use octoscope::adapters::clock::SystemClock;
use octoscope::api::notify::{
    RuleFields, RuleFilterFields, STATS_DAYS, check_rule_fields, new_rule, pretty_json, stats_since, test_notification,
};
use octoscope::api::{RuleView, RuleWithSecret};
use octoscope::config::NotifyConfig;
use octoscope::domain::{Rule, RuleId, RuleStats, TargetSpec};
use octoscope::ports::{Clock, NotificationLog, NotificationSink, Page, PageRequest, RuleStore};

use crate::cli::{AddRule, RulesCommand, env, refuse_bad};

pub async fn run(command: RulesCommand, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let config = refuse_bad(NotifyConfig::load(env));
    let store = crate::open_sqlite(data_dir)?;
    let now = SystemClock.now();
    match command {
        RulesCommand::Add(add) => {
            let spec = check_rule_fields(fields(*add), config.allow_private).await.map_err(|e| anyhow::anyhow!(e))?;
            let rule = new_rule(spec, now);
            store.put_rule(&rule).await.context("saving the rule")?;
            let secret = rule.secrets.current().map(str::to_owned);
            if json {
                let view = RuleWithSecret { rule: RuleView::of(&rule, RuleStats::default()), secret };
                println!("{}", pretty_json(&view));
            } else {
                println!("rule {} added: {}", rule.id, describe(&rule));
                if let Some(secret) = secret {
                    println!("signing secret (shown this once; verify the webhook-signature header with it): {secret}");
                }
            }
        }
        RulesCommand::List => {
            let since = stats_since(now);
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            let mut views = Vec::new();
            loop {
                let rules = store.list_rules(&page).await.context("reading the rules")?;
                for rule in &rules.items {
                    let stats = store.rule_stats(&rule.id, since).await.context("reading the log")?;
                    if json {
                        views.push(RuleView::of(rule, stats));
                    } else {
                        println!("{}  {}", rule.id, describe(rule));
                        println!(
                            "    last {STATS_DAYS} days: {} delivered, {} failed, {} pending{}",
                            stats.delivered,
                            stats.failed,
                            stats.pending,
                            rule.disabled.as_deref().map(|d| format!("; disabled: {d}")).unwrap_or_default()
                        );
                    }
                }
                match rules.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            if json {
                println!("{}", pretty_json(&Page { items: views, next_cursor: None }));
            }
        }
        RulesCommand::Remove { id } => {
            let id = rule_id(&id)?;
            anyhow::ensure!(store.delete_rule(&id).await.context("removing the rule")?, "no rule {id}");
            if json {
                // An id is rul_ and hex digits: nothing to escape.
                println!("{{\"id\": \"{id}\", \"removed\": true}}");
            } else {
                println!("rule {id} removed (its notifications stay in the log)");
            }
        }
        RulesCommand::Test { id } => {
            let id = rule_id(&id)?;
            let rule = store.get_rule(&id).await.context("reading the rule")?;
            let rule = rule.ok_or_else(|| anyhow::anyhow!("no rule {id}"))?;
            let note = test_notification(&rule, now);
            store.enqueue(std::slice::from_ref(&note)).await.context("queueing the test")?;
            if json {
                println!("{}", pretty_json(&note));
            } else {
                println!(
                    "test notification {} queued for {}; `octoscope serve` sends it (GET /api/notifications/{} shows its attempts)",
                    note.id,
                    target(&rule.target),
                    note.id
                );
            }
        }
    }
    Ok(())
}

fn rule_id(s: &str) -> anyhow::Result<RuleId> {
    RuleId::parse(s).map_err(|_| {
        anyhow::anyhow!("{s:?} is not a rule id (rul_ and 20 hex digits; `octoscope rules list` shows them)")
    })
}

fn fields(a: AddRule) -> RuleFields {
    let (target_type, target) = match (a.webhook, a.slack, a.dispatch) {
        (Some(url), _, _) => ("webhook", url),
        (_, Some(url), _) => ("slack", url),
        (_, _, Some(repo)) => ("repository_dispatch", repo),
        // clap's group requires one.
        (None, None, None) => ("", String::new()),
    };
    RuleFields {
        on: a.on,
        filters: RuleFilterFields {
            repo: a.repo,
            branch: a.branch,
            author: a.author,
            team: a.team,
            environment: a.environment,
            skip_late: a.skip_late,
            hours: a.hours,
            threshold_seconds: a.threshold_seconds,
            label: a.label,
        },
        target_type: target_type.to_owned(),
        target,
        event_type: a.event_type,
    }
}

/// `pull_request.merged repo=acme/api branch=main -> webhook https://…`
fn describe(rule: &Rule) -> String {
    let f = &rule.filters;
    let mut parts = vec![rule.event.as_str().to_owned()];
    let filters = [
        ("repo", f.repo.as_ref().map(|r| r.as_str().to_owned())),
        ("branch", f.branch.clone()),
        ("author", f.author.clone()),
        ("team", f.team.clone()),
        ("environment", f.environment.clone()),
        ("hours", f.hours.map(|h| h.to_string())),
        ("threshold_seconds", f.threshold_seconds.map(|s| s.to_string())),
        ("label", f.label.clone()),
    ];
    parts.extend(filters.into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))));
    if f.skip_late {
        parts.push("skip-late".into());
    }
    parts.push(format!("-> {}", target(&rule.target)));
    parts.join(" ")
}

/// A target as people read it; a Slack URL without its path (its credential).
fn target(t: &TargetSpec) -> String {
    match t {
        TargetSpec::Webhook { url } => format!("webhook {url}"),
        TargetSpec::Slack { url } => {
            let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
            format!("slack https://{host}/…")
        }
        TargetSpec::RepositoryDispatch { repo, event_type } => {
            format!("repository_dispatch {repo} ({})", event_type.as_deref().unwrap_or("octoscope"))
        }
    }
}
