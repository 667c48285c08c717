//! A small GraphQL executor over the ground truth: parses the document with
//! `graphql-parser`, resolves aliases, variables, fragments (named and inline),
//! `__typename` and cursor-paginated connections for the part of GitHub's
//! schema Octoscope reads. An unknown field is an error, as on GitHub.

use std::collections::HashMap;

use base64::Engine as _;
use graphql_parser::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet, TypeCondition, Value,
};
use serde_json::{Map, Value as Json, json};

use crate::model::*;

/// The answer to one GraphQL request, and its operation name (for counters).
pub struct Answer {
    pub operation: String,
    pub body: Json,
}

/// Precomputed orderings the connections need.
pub struct Index {
    /// Per repository: pull request positions, newest-updated first.
    pub pulls_by_update: Vec<Vec<usize>>,
}

impl Index {
    pub fn new(org: &Org) -> Self {
        let pulls_by_update = org
            .repos
            .iter()
            .map(|r| {
                let mut idx: Vec<usize> = (0..r.pulls.len()).collect();
                idx.sort_by(|&a, &b| {
                    let (a, b) = (&r.pulls[a], &r.pulls[b]);
                    b.updated_at.cmp(&a.updated_at).then(b.number.cmp(&a.number))
                });
                idx
            })
            .collect();
        Self { pulls_by_update }
    }
}

/// Execute `query` with `variables`; `budget` is (limit, remaining, reset) for `rateLimit`.
pub fn execute(org: &Org, index: &Index, query: &str, variables: &Json, budget: (u64, u64, Time)) -> Answer {
    let doc: Document<String> = match graphql_parser::parse_query(query) {
        Ok(d) => d,
        Err(e) => {
            return Answer {
                operation: "invalid".into(),
                body: json!({ "errors": [{ "message": format!("Parse error: {e}") }] }),
            };
        }
    };
    let mut fragments = HashMap::new();
    let mut operation = None;
    for def in &doc.definitions {
        match def {
            Definition::Fragment(f) => {
                fragments.insert(f.name.as_str(), f);
            }
            Definition::Operation(op) => operation = operation.or(Some(op)),
        }
    }
    let Some(op) = operation else {
        return Answer { operation: "none".into(), body: json!({ "errors": [{ "message": "No operation" }] }) };
    };
    let (name, selection, var_defs) = match op {
        OperationDefinition::Query(q) => (q.name.clone(), &q.selection_set, &q.variable_definitions),
        OperationDefinition::SelectionSet(s) => (None, s, &Vec::new()),
        _ => {
            return Answer {
                operation: "mutation".into(),
                body: json!({ "errors": [{ "message": "The fake serves queries only" }] }),
            };
        }
    };
    let mut vars = variables.as_object().cloned().unwrap_or_default();
    for d in var_defs {
        if !vars.contains_key(&d.name)
            && let Some(default) = &d.default_value
        {
            vars.insert(d.name.clone(), to_json(default, &Map::new()));
        }
    }
    let mut exec = Exec { org, index, vars, fragments, errors: Vec::new(), budget };
    let data = exec.selection(&Obj::Query, selection, &mut Vec::new());
    let operation = name.unwrap_or_else(|| "anonymous".into());
    let body = match data {
        Ok(data) if exec.errors.is_empty() => json!({ "data": data }),
        Ok(data) => json!({ "data": data, "errors": exec.errors }),
        Err(message) => json!({ "errors": [{ "message": message }] }),
    };
    Answer { operation, body }
}

#[derive(Clone)]
enum Obj<'a> {
    Query,
    RateLimit,
    Org,
    Repo(usize),
    Pull(&'a Pull),
    Review(&'a Review),
    Team(&'a Team),
    User(&'a str),
    Ref(&'a Branch),
    Commit(&'a str),
    Label(&'a str),
    ReviewRequest(Reviewer<'a>),
    Conn(Conn<'a>),
    PageInfo { has_next: bool, has_previous: bool, start: Option<String>, end: Option<String> },
    Edge(Box<Obj<'a>>, String),
}

#[derive(Clone)]
enum Reviewer<'a> {
    User(&'a str),
    Team(&'a str),
}

#[derive(Clone)]
struct Conn<'a> {
    typename: &'static str,
    total: usize,
    /// Position of the first item in the full list.
    offset: usize,
    items: Vec<Obj<'a>>,
    has_next: bool,
}

/// What a field resolves to before its sub-selection is applied.
enum Out<'a> {
    Json(Json),
    Obj(Obj<'a>),
    List(Vec<Obj<'a>>),
}

fn cursor(pos: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:v2:{pos}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("cursor:v2:")?.parse().ok()
}

fn time(t: Time) -> Json {
    json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn to_json(v: &Value<String>, vars: &Map<String, Json>) -> Json {
    match v {
        Value::Variable(name) => vars.get(name).cloned().unwrap_or(Json::Null),
        Value::Int(n) => json!(n.as_i64()),
        Value::Float(f) => json!(f),
        Value::String(s) => json!(s),
        Value::Boolean(b) => json!(b),
        Value::Null => Json::Null,
        Value::Enum(e) => json!(e),
        Value::List(l) => Json::Array(l.iter().map(|x| to_json(x, vars)).collect()),
        Value::Object(o) => Json::Object(o.iter().map(|(k, x)| (k.clone(), to_json(x, vars))).collect()),
    }
}

struct Exec<'a> {
    org: &'a Org,
    index: &'a Index,
    vars: Map<String, Json>,
    fragments: HashMap<&'a str, &'a FragmentDefinition<'a, String>>,
    errors: Vec<Json>,
    budget: (u64, u64, Time),
}

impl<'a> Obj<'a> {
    fn typename(&self) -> &'static str {
        match self {
            Obj::Query => "Query",
            Obj::RateLimit => "RateLimit",
            Obj::Org => "Organization",
            Obj::Repo(_) => "Repository",
            Obj::Pull(..) => "PullRequest",
            Obj::Review(_) => "PullRequestReview",
            Obj::Team(_) => "Team",
            Obj::User(_) => "User",
            Obj::Ref(_) => "Ref",
            Obj::Commit(_) => "Commit",
            Obj::Label(_) => "Label",
            Obj::ReviewRequest(_) => "ReviewRequest",
            Obj::Conn(c) => c.typename,
            Obj::PageInfo { .. } => "PageInfo",
            Obj::Edge(..) => "Edge",
        }
    }

    /// Whether a fragment on `cond` applies (abstract types included).
    fn is(&self, cond: &str) -> bool {
        let t = self.typename();
        t == cond
            || match cond {
                "Node" => {
                    !matches!(self, Obj::Query | Obj::RateLimit | Obj::Conn(_) | Obj::PageInfo { .. } | Obj::Edge(..))
                }
                "Actor" | "RequestedReviewer" => matches!(self, Obj::User(_) | Obj::Team(_)),
                "GitObject" => matches!(self, Obj::Commit(_)),
                "UniformResourceLocatable" | "RepositoryInfo" => matches!(self, Obj::Repo(_) | Obj::Pull(..)),
                _ => false,
            }
    }
}

impl<'a> Exec<'a> {
    fn selection(
        &mut self,
        obj: &Obj<'a>,
        set: &'a SelectionSet<'a, String>,
        path: &mut Vec<String>,
    ) -> Result<Json, String> {
        let mut out = Map::new();
        self.fill(obj, set, path, &mut out)?;
        Ok(Json::Object(out))
    }

    fn fill(
        &mut self,
        obj: &Obj<'a>,
        set: &'a SelectionSet<'a, String>,
        path: &mut Vec<String>,
        out: &mut Map<String, Json>,
    ) -> Result<(), String> {
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    path.push(key.clone());
                    let value = if f.name == "__typename" {
                        json!(obj.typename())
                    } else {
                        match self.field(obj, f, path)? {
                            Out::Json(v) => v,
                            Out::Obj(o) => self.selection(&o, &f.selection_set, path)?,
                            Out::List(list) => {
                                let mut arr = Vec::with_capacity(list.len());
                                for o in &list {
                                    arr.push(self.selection(o, &f.selection_set, path)?);
                                }
                                Json::Array(arr)
                            }
                        }
                    };
                    path.pop();
                    out.insert(key, value);
                }
                Selection::FragmentSpread(s) => {
                    let frag = *self
                        .fragments
                        .get(s.fragment_name.as_str())
                        .ok_or_else(|| format!("Fragment {} was used, but not defined", s.fragment_name))?;
                    let TypeCondition::On(cond) = &frag.type_condition;
                    if obj.is(cond) {
                        self.fill(obj, &frag.selection_set, path, out)?;
                    }
                }
                Selection::InlineFragment(i) => {
                    let applies = match &i.type_condition {
                        Some(TypeCondition::On(cond)) => obj.is(cond),
                        None => true,
                    };
                    if applies {
                        self.fill(obj, &i.selection_set, path, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn arg(&self, f: &Field<'a, String>, name: &str) -> Json {
        f.arguments.iter().find(|(n, _)| n == name).map(|(_, v)| to_json(v, &self.vars)).unwrap_or(Json::Null)
    }

    fn str_arg(&self, f: &Field<'a, String>, name: &str) -> Option<String> {
        self.arg(f, name).as_str().map(str::to_owned)
    }

    fn not_found(&mut self, path: &[String], message: String) -> Out<'a> {
        self.errors.push(json!({ "type": "NOT_FOUND", "path": path, "locations": [], "message": message }));
        Out::Json(Json::Null)
    }

    /// A connection over `items` paginated by `first`/`after`.
    fn connection(
        &self,
        f: &Field<'a, String>,
        typename: &'static str,
        items: Vec<Obj<'a>>,
    ) -> Result<Out<'a>, String> {
        let wants_nodes = f.selection_set.items.iter().any(|s| match s {
            Selection::Field(x) => x.name == "nodes" || x.name == "edges",
            _ => true,
        });
        let first = self.arg(f, "first").as_i64();
        if wants_nodes && first.is_none() {
            return Err(format!(
                "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                f.name
            ));
        }
        let first = first.unwrap_or(0);
        if !(0..=100).contains(&first) {
            return Err(format!(
                "Requesting {first} records on the `{}` connection exceeds the `first` limit of 100 records.",
                f.name
            ));
        }
        let start = match self.arg(f, "after").as_str() {
            Some(c) => {
                decode_cursor(c).map(|p| p + 1).ok_or_else(|| format!("`{c}` does not appear to be a valid cursor."))?
            }
            None => 0,
        };
        let total = items.len();
        let end = (start + first as usize).min(total);
        let page: Vec<Obj<'a>> = if start < end { items[start..end].to_vec() } else { Vec::new() };
        Ok(Out::Obj(Obj::Conn(Conn { typename, total, offset: start, items: page, has_next: end < total })))
    }

    fn field(&mut self, obj: &Obj<'a>, f: &'a Field<'a, String>, path: &[String]) -> Result<Out<'a>, String> {
        let org = self.org;
        let name = f.name.as_str();
        let unknown = || Err(format!("Field '{name}' doesn't exist on type '{}'", obj.typename()));
        Ok(match obj {
            Obj::Query => match name {
                "repository" => {
                    let full = format!(
                        "{}/{}",
                        self.str_arg(f, "owner").unwrap_or_default(),
                        self.str_arg(f, "name").unwrap_or_default()
                    );
                    match org.repos.iter().position(|r| r.full_name().eq_ignore_ascii_case(&full)) {
                        Some(i) => Out::Obj(Obj::Repo(i)),
                        None => {
                            self.not_found(path, format!("Could not resolve to a Repository with the name '{full}'."))
                        }
                    }
                }
                "organization" => {
                    let login = self.str_arg(f, "login").unwrap_or_default();
                    if login.eq_ignore_ascii_case(&org.login) {
                        Out::Obj(Obj::Org)
                    } else {
                        self.not_found(
                            path,
                            format!("Could not resolve to an Organization with the login of '{login}'."),
                        )
                    }
                }
                "rateLimit" => Out::Obj(Obj::RateLimit),
                _ => return unknown(),
            },
            Obj::RateLimit => {
                let (limit, remaining, reset) = self.budget;
                Out::Json(match name {
                    "cost" | "nodeCount" => json!(1),
                    "limit" => json!(limit),
                    "remaining" => json!(remaining),
                    "used" => json!(limit - remaining),
                    "resetAt" => time(reset),
                    _ => return unknown(),
                })
            }
            Obj::Org => match name {
                "login" => Out::Json(json!(org.login)),
                "databaseId" => Out::Json(json!(org.id)),
                "id" => Out::Json(json!(format!("O_{}", org.id))),
                "teams" => {
                    let mut teams: Vec<&Team> = org.teams.iter().collect();
                    teams.sort_by(|a, b| a.name.cmp(&b.name));
                    return self.connection(f, "TeamConnection", teams.into_iter().map(Obj::Team).collect());
                }
                "team" => {
                    let slug = self.str_arg(f, "slug").unwrap_or_default();
                    match org.team(&slug) {
                        Some(t) => Out::Obj(Obj::Team(t)),
                        None => Out::Json(Json::Null),
                    }
                }
                "repositories" => {
                    let mut repos: Vec<usize> = (0..org.repos.len()).collect();
                    repos.sort_by(|&a, &b| org.repos[a].name.cmp(&org.repos[b].name));
                    return self.connection(f, "RepositoryConnection", repos.into_iter().map(Obj::Repo).collect());
                }
                "membersWithRole" => {
                    return self.connection(
                        f,
                        "OrganizationMemberConnection",
                        org.members.iter().map(|m| Obj::User(m)).collect(),
                    );
                }
                _ => return unknown(),
            },
            Obj::Repo(i) => {
                let repo = &org.repos[*i];
                match name {
                    "nameWithOwner" => Out::Json(json!(repo.full_name())),
                    "name" => Out::Json(json!(repo.name)),
                    "databaseId" => Out::Json(json!(repo.id)),
                    "id" => Out::Json(json!(format!("R_{}", repo.id))),
                    "pushedAt" => Out::Json(time(repo.pushed_at)),
                    "updatedAt" => Out::Json(time(repo.updated_at)),
                    "createdAt" => Out::Json(time(repo.created_at)),
                    "defaultBranchRef" => match repo.branches.iter().find(|b| b.name == repo.default_branch) {
                        Some(b) => Out::Obj(Obj::Ref(b)),
                        None => Out::Json(Json::Null),
                    },
                    "refs" => {
                        let prefix = self.str_arg(f, "refPrefix").unwrap_or_default();
                        if prefix != "refs/heads/" {
                            return Err(format!("the fake serves refPrefix \"refs/heads/\" only, not {prefix:?}"));
                        }
                        let mut branches: Vec<&Branch> = repo.branches.iter().collect();
                        branches.sort_by(|a, b| a.name.cmp(&b.name));
                        return self.connection(f, "RefConnection", branches.into_iter().map(Obj::Ref).collect());
                    }
                    "pullRequest" => {
                        let n = self.arg(f, "number").as_u64().unwrap_or_default();
                        match repo.pulls.iter().find(|p| p.number == n) {
                            Some(p) => Out::Obj(Obj::Pull(p)),
                            None => self
                                .not_found(path, format!("Could not resolve to a PullRequest with the number of {n}.")),
                        }
                    }
                    "pullRequests" => {
                        let states: Vec<String> = match self.arg(f, "states") {
                            Json::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
                            Json::String(s) => vec![s],
                            _ => Vec::new(),
                        };
                        let order = self.arg(f, "orderBy");
                        let keep = |p: &Pull| states.is_empty() || states.iter().any(|s| s == p.state.graphql());
                        let items: Vec<Obj<'a>> = match (order["field"].as_str(), order["direction"].as_str()) {
                            (Some("UPDATED_AT"), Some("DESC")) => self.index.pulls_by_update[*i]
                                .iter()
                                .map(|&k| &repo.pulls[k])
                                .filter(|p| keep(p))
                                .map(Obj::Pull)
                                .collect(),
                            (None, _) => repo.pulls.iter().filter(|p| keep(p)).map(Obj::Pull).collect(),
                            other => return Err(format!("the fake does not order pull requests by {other:?}")),
                        };
                        return self.connection(f, "PullRequestConnection", items);
                    }
                    _ => return unknown(),
                }
            }
            Obj::Pull(p) => Out::Json(match name {
                "databaseId" => json!(p.id),
                "id" => json!(format!("PR_{}", p.id)),
                "number" => json!(p.number),
                "title" => json!(p.title),
                "body" => json!(p.body),
                "state" => json!(p.state.graphql()),
                "isDraft" => json!(p.draft),
                "merged" => json!(p.state == PullState::Merged),
                "author" => return Ok(Out::Obj(Obj::User(&p.author))),
                "createdAt" => time(p.created_at),
                "updatedAt" => time(p.updated_at),
                "closedAt" => p.closed_at.map(time).unwrap_or(Json::Null),
                "mergedAt" => p.merged_at.map(time).unwrap_or(Json::Null),
                "additions" => json!(p.additions),
                "deletions" => json!(p.deletions),
                "changedFiles" => json!(p.changed_files),
                "baseRefName" => json!(p.base_ref),
                "headRefName" => json!(p.head_ref),
                "headRefOid" => json!(p.head_sha),
                "commits" => {
                    // Only the count is served.
                    let placeholders = vec![Obj::Commit(&p.head_sha); p.commits as usize];
                    return self.connection(f, "PullRequestCommitConnection", placeholders);
                }
                "labels" => {
                    return self.connection(f, "LabelConnection", p.labels.iter().map(|l| Obj::Label(l)).collect());
                }
                "reviewRequests" => {
                    let items = p
                        .requested_reviewers
                        .iter()
                        .map(|u| Obj::ReviewRequest(Reviewer::User(u)))
                        .chain(p.requested_teams.iter().map(|t| Obj::ReviewRequest(Reviewer::Team(t))))
                        .collect();
                    return self.connection(f, "ReviewRequestConnection", items);
                }
                "reviews" => {
                    return self.connection(
                        f,
                        "PullRequestReviewConnection",
                        p.reviews.iter().map(Obj::Review).collect(),
                    );
                }
                _ => return unknown(),
            }),
            Obj::Review(r) => Out::Json(match name {
                "databaseId" => json!(r.id),
                "id" => json!(r.node_id),
                "state" => json!(r.state.graphql()),
                "submittedAt" => time(r.submitted_at),
                "author" => return Ok(Out::Obj(Obj::User(&r.author))),
                "commit" => return Ok(Out::Obj(Obj::Commit(&r.commit_id))),
                _ => return unknown(),
            }),
            Obj::Team(t) => match name {
                "databaseId" => Out::Json(json!(t.id)),
                "id" => Out::Json(json!(format!("T_{}", t.id))),
                "slug" => Out::Json(json!(t.slug)),
                "name" => Out::Json(json!(t.name)),
                "description" => Out::Json(json!(t.description)),
                "privacy" => Out::Json(json!(if t.privacy == "secret" { "SECRET" } else { "VISIBLE" })),
                "parentTeam" => Out::Json(Json::Null),
                "members" => {
                    // Teams are flat here, so IMMEDIATE and ALL membership agree.
                    return self.connection(
                        f,
                        "TeamMemberConnection",
                        t.members.iter().map(|m| Obj::User(m)).collect(),
                    );
                }
                _ => return unknown(),
            },
            Obj::User(login) => match name {
                "login" => Out::Json(json!(login)),
                _ => return unknown(),
            },
            Obj::Ref(b) => match name {
                "name" => Out::Json(json!(b.name)),
                "prefix" => Out::Json(json!("refs/heads/")),
                "target" => Out::Obj(Obj::Commit(&b.head_sha)),
                _ => return unknown(),
            },
            Obj::Commit(oid) => match name {
                "oid" => Out::Json(json!(oid)),
                _ => return unknown(),
            },
            Obj::Label(l) => match name {
                "name" => Out::Json(json!(l)),
                _ => return unknown(),
            },
            Obj::ReviewRequest(r) => match name {
                "requestedReviewer" => Out::Obj(match r {
                    Reviewer::User(u) => Obj::User(u),
                    Reviewer::Team(slug) => match org.team(slug) {
                        Some(t) => Obj::Team(t),
                        None => return Ok(Out::Json(Json::Null)),
                    },
                }),
                _ => return unknown(),
            },
            Obj::Conn(c) => match name {
                "totalCount" => Out::Json(json!(c.total)),
                "nodes" => Out::List(c.items.clone()),
                "edges" => Out::List(
                    c.items
                        .iter()
                        .enumerate()
                        .map(|(k, o)| Obj::Edge(Box::new(o.clone()), cursor(c.offset + k)))
                        .collect(),
                ),
                "pageInfo" => {
                    let n = c.items.len();
                    Out::Obj(Obj::PageInfo {
                        has_next: c.has_next,
                        has_previous: c.offset > 0,
                        start: (n > 0).then(|| cursor(c.offset)),
                        end: (n > 0).then(|| cursor(c.offset + n - 1)),
                    })
                }
                _ => return unknown(),
            },
            Obj::PageInfo { has_next, has_previous, start, end } => Out::Json(match name {
                "hasNextPage" => json!(has_next),
                "hasPreviousPage" => json!(has_previous),
                "startCursor" => json!(start),
                "endCursor" => json!(end),
                _ => return unknown(),
            }),
            Obj::Edge(node, c) => match name {
                "node" => Out::Obj((**node).clone()),
                "cursor" => Out::Json(json!(c)),
                _ => return unknown(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(org: &Org, q: &str, vars: Json) -> Json {
        execute(org, &Index::new(org), q, &vars, (5000, 5000, chrono::Utc::now())).body
    }

    #[test]
    fn aliases_fragments_and_counts_resolve() {
        // GIVEN a generated org WHEN two aliased repositories are asked with a fragment
        let org = Org::generate(&OrgSpec::default());
        let q = "query Q($o: String!) { a: repository(owner: $o, name: \"repo-0\") { ...F } b: repository(owner: $o, name: \"nope\") { ...F } }
                 fragment F on Repository { nameWithOwner open: pullRequests(states: [OPEN]) { totalCount } }";
        let out = run(&org, q, json!({ "o": "octo-org" }));
        // THEN the found one has the true count and the missing one is null with a NOT_FOUND error
        assert_eq!(out["data"]["a"]["nameWithOwner"], "octo-org/repo-0");
        assert_eq!(out["data"]["a"]["open"]["totalCount"], org.repos[0].count(PullState::Open));
        assert_eq!(out["data"]["b"], Json::Null);
        assert_eq!(out["errors"][0]["type"], "NOT_FOUND");
    }

    #[test]
    fn cursors_walk_every_item_once() {
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 250, ..OrgSpec::default() });
        let q = "query P($after: String) { repository(owner: \"octo-org\", name: \"repo-0\") {
                   pullRequests(first: 100, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
                     nodes { number updatedAt } pageInfo { hasNextPage endCursor } } } }";
        let (mut after, mut seen, mut pages) = (Json::Null, Vec::new(), 0);
        loop {
            let out = run(&org, q, json!({ "after": after }));
            let conn = &out["data"]["repository"]["pullRequests"];
            seen.extend(conn["nodes"].as_array().unwrap().iter().map(|n| n["number"].as_u64().unwrap()));
            pages += 1;
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(pages, 3);
        seen.sort();
        assert_eq!(seen, (1..=250).collect::<Vec<u64>>());
    }

    #[test]
    fn unknown_fields_and_unbounded_connections_are_errors() {
        let org = Org::generate(&OrgSpec::default());
        let out = run(&org, "{ organization(login: \"octo-org\") { nope } }", Json::Null);
        assert!(out["errors"][0]["message"].as_str().unwrap().contains("doesn't exist"), "{out}");
        let out = run(&org, "{ organization(login: \"octo-org\") { teams { nodes { slug } } } }", Json::Null);
        assert!(out["errors"][0]["message"].as_str().unwrap().contains("first"), "{out}");
    }
}
