//! A small GraphQL executor over the ground truth: parses the document with
//! `graphql-parser`, resolves aliases, variables, fragments (named and inline),
//! `__typename` and cursor-paginated connections for the part of GitHub's
//! schema Octoscope reads. An unknown field is an error, as on GitHub.

use std::collections::{BTreeMap, HashMap};

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
    /// Positions (in the `nulls` given) of the null nodes this answer held.
    pub nulled: Vec<usize>,
    /// What was asked that the caller does not see (another account's
    /// repository, organisation or run): answered as not found.
    pub foreign: Vec<String>,
}

/// Precomputed orderings and lookups the connections need.
pub struct Index {
    /// Per repository: pull request positions, newest-updated first.
    pub pulls_by_update: Vec<Vec<usize>>,
    /// Workflow run id: (repository position, run position).
    pub runs_by_id: HashMap<i64, (usize, usize)>,
}

/// An item that comes back as `null` in its connection's `nodes` (and its
/// edge's `node`), with a `FORBIDDEN` error, as GitHub answers for an item the
/// token may not see (see `FakeHub::null_node`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NullNode {
    /// Pull request `number` of repository `repo` (`owner/name`).
    Pull { repo: String, number: u64 },
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
        let runs_by_id = org
            .repos
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.runs.iter().enumerate().map(move |(k, w)| (w.id, (i, k))))
            .collect();
        Self { pulls_by_update, runs_by_id }
    }
}

/// What the caller of a query may see and read, and how much of it a page
/// holds: everything, as asked, by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access<'a> {
    /// An installation on this account: another account's repositories,
    /// organisation and runs do not resolve.
    pub sees: Option<&'a str>,
    /// A token narrowed to these repositories (ids): no other resolves, and
    /// the organisation's repository list holds only these, as on GitHub.
    pub repositories: Option<&'a [i64]>,
    /// An installation token's permissions: a field that needs one it lacks
    /// is GitHub's `FORBIDDEN` error at its path, and, the field being
    /// non-null, the object holding it is `null`.
    pub permissions: Option<&'a BTreeMap<String, String>>,
    /// At most this many nodes on a page of any connection, whatever
    /// `first` asks (`first` is an upper bound: a client follows
    /// `hasNextPage`, never a page's length). `None`: as many as asked.
    pub page_cap: Option<usize>,
}

impl Access<'_> {
    fn may(&self, permission: &str) -> bool {
        self.permissions.is_none_or(|p| p.get(permission).is_some_and(|l| crate::server::level_rank(l) > 0))
    }
}

/// The permission (GitHub's name) a field needs to be read with an
/// installation token, beyond metadata; None for the others.
fn permission_of(obj: &Obj<'_>, field: &str) -> Option<&'static str> {
    match (obj, field) {
        (Obj::Repo(_), "pullRequest" | "pullRequests") => Some("pull_requests"),
        (Obj::Repo(_), "deployments") => Some("deployments"),
        (Obj::Org, "teams" | "team" | "membersWithRole") => Some("members"),
        (Obj::Commit(_) | Obj::GitCommit(..), "history") => Some("contents"),
        (Obj::Run(..), "checkSuite") => Some("checks"),
        _ => None,
    }
}

/// Execute `query` with `variables`; `budget` is (limit, remaining, reset) for
/// `rateLimit`; the items `nulls` names come back as `null` with an error;
/// `access` is what the caller may see and read.
pub fn execute(
    org: &Org,
    index: &Index,
    query: &str,
    variables: &Json,
    budget: (u64, u64, Time),
    nulls: &[NullNode],
    access: Access<'_>,
) -> Answer {
    let doc: Document<String> = match graphql_parser::parse_query(query) {
        Ok(d) => d,
        Err(e) => {
            return Answer {
                operation: "invalid".into(),
                body: json!({ "errors": [{ "message": format!("Parse error: {e}") }] }),
                nulled: Vec::new(),
                foreign: Vec::new(),
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
        return Answer {
            operation: "none".into(),
            body: json!({ "errors": [{ "message": "No operation" }] }),
            nulled: Vec::new(),
            foreign: Vec::new(),
        };
    };
    let (name, selection, var_defs) = match op {
        OperationDefinition::Query(q) => (q.name.clone(), &q.selection_set, &q.variable_definitions),
        OperationDefinition::SelectionSet(s) => (None, s, &Vec::new()),
        _ => {
            return Answer {
                operation: "mutation".into(),
                body: json!({ "errors": [{ "message": "The fake serves queries only" }] }),
                nulled: Vec::new(),
                foreign: Vec::new(),
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
    let mut exec = Exec {
        org,
        index,
        vars,
        fragments,
        errors: Vec::new(),
        budget,
        nulls,
        nulled: Vec::new(),
        access,
        foreign: Vec::new(),
        null_parent: false,
    };
    let data = exec.selection(&Obj::Query, selection, &mut Vec::new());
    let operation = name.unwrap_or_else(|| "anonymous".into());
    let body = match data {
        Ok(data) if exec.errors.is_empty() => json!({ "data": data }),
        Ok(data) => json!({ "data": data, "errors": exec.errors }),
        Err(message) => json!({ "errors": [{ "message": message }] }),
    };
    let mut nulled = exec.nulled;
    nulled.sort_unstable();
    nulled.dedup();
    Answer { operation, body, nulled, foreign: exec.foreign }
}

#[derive(Clone)]
enum Obj<'a> {
    Query,
    RateLimit,
    Org,
    Repo(usize),
    /// A pull request and its repository's position.
    Pull(usize, &'a Pull),
    Review(&'a Review),
    Team(&'a Team),
    User(&'a str),
    /// A branch and its repository's position.
    Ref(usize, &'a Branch),
    /// A commit known by its oid only.
    Commit(&'a str),
    /// A commit of a repository's default-branch history: (repository, position in `commits`).
    GitCommit(usize, usize),
    GitActor(&'a crate::model::Commit),
    Deployment(usize, &'a Deployment),
    DeploymentStatus(&'a DeploymentStatus),
    /// A workflow run: (repository, the run).
    Run(usize, &'a WorkflowRun),
    CheckSuite(usize, &'a WorkflowRun),
    CheckRun(&'a WorkflowJob),
    /// An id that resolves to nothing: `null` in a list, with this error (type, message).
    Unresolved(&'static str, String),
    Label(&'a str),
    ReviewRequest(Reviewer<'a>),
    Conn(Conn<'a>),
    PageInfo {
        has_next: bool,
        has_previous: bool,
        start: Option<String>,
        end: Option<String>,
    },
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

/// GraphQL's `CheckStatusState` of a run's or job's REST status.
fn check_status(status: &str) -> &'static str {
    match status {
        "completed" => "COMPLETED",
        "in_progress" => "IN_PROGRESS",
        "waiting" => "WAITING",
        "pending" => "PENDING",
        "requested" => "REQUESTED",
        _ => "QUEUED",
    }
}

/// GraphQL's `DeploymentState`, from the newest status.
fn deployment_state(d: &Deployment) -> &'static str {
    match d.latest_status().map(|s| s.state.as_str()) {
        None => "PENDING",
        Some("success") => "ACTIVE",
        Some("failure") => "FAILURE",
        Some("error") => "ERROR",
        Some("inactive") => "INACTIVE",
        Some("in_progress") => "IN_PROGRESS",
        Some("queued") => "QUEUED",
        Some(_) => "PENDING",
    }
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
    nulls: &'a [NullNode],
    nulled: Vec<usize>,
    access: Access<'a>,
    foreign: Vec<String>,
    /// A non-null field of the object being filled failed: the object is null.
    null_parent: bool,
}

impl<'a> Obj<'a> {
    fn typename(&self) -> &'static str {
        match self {
            Obj::Query => "Query",
            Obj::RateLimit => "RateLimit",
            Obj::Org => "Organization",
            Obj::Repo(_) => "Repository",
            Obj::Pull(..) => "PullRequest",
            Obj::GitCommit(..) => "Commit",
            Obj::GitActor(_) => "GitActor",
            Obj::Deployment(..) => "Deployment",
            Obj::DeploymentStatus(_) => "DeploymentStatus",
            Obj::Run(..) => "WorkflowRun",
            Obj::CheckSuite(..) => "CheckSuite",
            Obj::CheckRun(_) => "CheckRun",
            Obj::Unresolved(..) => "Unresolved",
            Obj::Review(_) => "PullRequestReview",
            Obj::Team(_) => "Team",
            Obj::User(_) => "User",
            Obj::Ref(..) => "Ref",
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
                "Node" => !matches!(
                    self,
                    Obj::Query
                        | Obj::RateLimit
                        | Obj::Conn(_)
                        | Obj::PageInfo { .. }
                        | Obj::Edge(..)
                        | Obj::GitActor(_)
                        | Obj::Unresolved(..)
                ),
                "Actor" | "RequestedReviewer" => matches!(self, Obj::User(_) | Obj::Team(_)),
                "GitObject" => matches!(self, Obj::Commit(_) | Obj::GitCommit(..)),
                "UniformResourceLocatable" => {
                    matches!(self, Obj::Repo(_) | Obj::Pull(..) | Obj::GitCommit(..) | Obj::Run(..) | Obj::CheckRun(_))
                }
                "RepositoryInfo" => matches!(self, Obj::Repo(_) | Obj::Pull(..)),
                _ => false,
            }
    }
}

impl<'a> Exec<'a> {
    fn selection(
        &mut self,
        obj: &Obj<'a>,
        set: &'a SelectionSet<'a, String>,
        path: &mut Vec<Json>,
    ) -> Result<Json, String> {
        let mut out = Map::new();
        let outer = std::mem::take(&mut self.null_parent);
        self.fill(obj, set, path, &mut out)?;
        // A non-null field that failed makes the object holding it null (the
        // GraphQL spec's null propagation; each gated field's parent is nullable).
        let nulled = std::mem::replace(&mut self.null_parent, outer);
        Ok(if nulled { Json::Null } else { Json::Object(out) })
    }

    fn fill(
        &mut self,
        obj: &Obj<'a>,
        set: &'a SelectionSet<'a, String>,
        path: &mut Vec<Json>,
        out: &mut Map<String, Json>,
    ) -> Result<(), String> {
        for item in &set.items {
            match item {
                Selection::Field(f) if !self.included(&f.directives) => {}
                Selection::Field(f) => {
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    path.push(json!(key));
                    let value = if f.name == "__typename" {
                        json!(obj.typename())
                    } else {
                        match self.field(obj, f, path)? {
                            Out::Json(v) => v,
                            Out::Obj(o) => match self.withheld(&o) {
                                Some((kind, message)) => self.null_with_error(path, kind, message),
                                None => self.selection(&o, &f.selection_set, path)?,
                            },
                            Out::List(list) => {
                                let mut arr = Vec::with_capacity(list.len());
                                for (k, o) in list.iter().enumerate() {
                                    path.push(json!(k));
                                    let item = match self.withheld(o) {
                                        Some((kind, message)) => self.null_with_error(path, kind, message),
                                        None => self.selection(o, &f.selection_set, path)?,
                                    };
                                    path.pop();
                                    arr.push(item);
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

    /// Whether a field is asked for, by the `@include(if:)` and `@skip(if:)` directives.
    fn included(&self, directives: &[graphql_parser::query::Directive<'a, String>]) -> bool {
        directives.iter().all(|d| {
            let cond = d.arguments.iter().find(|(n, _)| n == "if").map(|(_, v)| to_json(v, &self.vars));
            match d.name.as_str() {
                "include" => cond == Some(Json::Bool(true)),
                "skip" => cond != Some(Json::Bool(true)),
                _ => true,
            }
        })
    }

    fn arg(&self, f: &Field<'a, String>, name: &str) -> Json {
        f.arguments.iter().find(|(n, _)| n == name).map(|(_, v)| to_json(v, &self.vars)).unwrap_or(Json::Null)
    }

    fn str_arg(&self, f: &Field<'a, String>, name: &str) -> Option<String> {
        self.arg(f, name).as_str().map(str::to_owned)
    }

    /// A `DateTime` or `GitTimestamp` argument (ISO 8601, or a date).
    fn time_arg(&self, f: &Field<'a, String>, name: &str) -> Result<Option<Time>, String> {
        let Some(raw) = self.str_arg(f, name) else { return Ok(None) };
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
            })
            .map(Some)
            .map_err(|_| format!("Argument '{name}' on Field '{}' has an invalid value ({raw:?}).", f.name))
    }

    /// The node an id names: workflow runs (`WFR_<id>`), of a repository the caller sees.
    fn node(&mut self, id: &str) -> Option<Obj<'a>> {
        let org = self.org;
        let run_id: i64 = id.strip_prefix("WFR_")?.parse().ok()?;
        let &(i, k) = self.index.runs_by_id.get(&run_id)?;
        let repo = org.repos.get(i)?;
        if !self.sees_owner(&repo.owner) {
            self.foreign.push(format!("node {id} of {}", repo.full_name()));
            return None;
        }
        // A workflow run is read with the Actions permission.
        if !self.narrowed_to(repo.id) || !self.access.may("actions") {
            return None;
        }
        Some(Obj::Run(i, repo.runs.get(k)?))
    }

    /// Whether the caller sees what `owner` owns.
    fn sees_owner(&self, owner: &str) -> bool {
        self.access.sees.is_none_or(|s| s.eq_ignore_ascii_case(owner))
    }

    /// Whether a token narrowed to some repositories sees this one.
    fn narrowed_to(&self, repo_id: i64) -> bool {
        self.access.repositories.is_none_or(|ids| ids.contains(&repo_id))
    }

    /// The jobs of `run` a `checkRuns(filterBy:)` keeps (no filter: the latest attempt's).
    fn check_runs(&self, f: &Field<'a, String>, run: &'a WorkflowRun) -> Result<Vec<&'a WorkflowJob>, String> {
        let filter = self.arg(f, "filterBy");
        let latest = match filter["checkType"].as_str() {
            None | Some("LATEST") => true,
            Some("ALL") => false,
            Some(other) => return Err(format!("Argument 'checkType' has an invalid value ({other}).")),
        };
        let strings = |key: &str| -> Option<Vec<String>> {
            match &filter[key] {
                Json::Array(a) => Some(a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()),
                Json::String(s) => Some(vec![s.clone()]),
                _ => None,
            }
        };
        // `statuses` overrides `status`.
        let statuses = strings("statuses").or_else(|| strings("status"));
        let conclusions = strings("conclusions");
        let check_name = filter["checkName"].as_str();
        Ok(run
            .jobs
            .iter()
            .filter(|j| !latest || j.run_attempt == run.run_attempt)
            .filter(|j| statuses.as_ref().is_none_or(|s| s.iter().any(|s| s == check_status(&j.status))))
            .filter(|j| {
                conclusions.as_ref().is_none_or(|c| {
                    j.conclusion.as_deref().is_some_and(|jc| c.iter().any(|c| c.eq_ignore_ascii_case(jc)))
                })
            })
            .filter(|j| check_name.is_none_or(|n| n == j.name))
            .collect())
    }

    fn not_found(&mut self, path: &[Json], message: String) -> Out<'a> {
        Out::Json(self.null_with_error(path, "NOT_FOUND", message))
    }

    fn null_with_error(&mut self, path: &[Json], kind: &str, message: String) -> Json {
        self.errors.push(json!({ "type": kind, "path": path, "locations": [], "message": message }));
        Json::Null
    }

    /// Whether an item of a list (or an edge's node) comes back as `null`, and the error that says why:
    /// an id that resolves to nothing, or an item made a null node.
    fn withheld(&mut self, o: &Obj<'a>) -> Option<(&'static str, String)> {
        match o {
            Obj::Unresolved(kind, message) => Some((kind, message.clone())),
            Obj::Pull(i, p) => {
                let repo = &self.org.repos[*i];
                let k = self.nulls.iter().position(
                    |n| matches!(n, NullNode::Pull { repo: r, number } if *number == p.number && r.eq_ignore_ascii_case(&repo.full_name())),
                )?;
                self.nulled.push(k);
                Some(("FORBIDDEN", "Resource not accessible by integration".to_owned()))
            }
            _ => None,
        }
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
        let asked = self.access.page_cap.map_or(first as usize, |cap| cap.min(first as usize));
        let end = (start + asked).min(total);
        let page: Vec<Obj<'a>> = if start < end { items[start..end].to_vec() } else { Vec::new() };
        Ok(Out::Obj(Obj::Conn(Conn { typename, total, offset: start, items: page, has_next: end < total })))
    }

    fn field(&mut self, obj: &Obj<'a>, f: &'a Field<'a, String>, path: &[Json]) -> Result<Out<'a>, String> {
        let org = self.org;
        let name = f.name.as_str();
        let unknown = || Err(format!("Field '{name}' doesn't exist on type '{}'", obj.typename()));
        if let Some(permission) = permission_of(obj, name)
            && !self.access.may(permission)
        {
            let message = "Resource not accessible by integration".to_owned();
            self.null_parent = true;
            return Ok(Out::Json(self.null_with_error(path, "FORBIDDEN", message)));
        }
        Ok(match obj {
            Obj::Query => match name {
                "repository" => {
                    let full = format!(
                        "{}/{}",
                        self.str_arg(f, "owner").unwrap_or_default(),
                        self.str_arg(f, "name").unwrap_or_default()
                    );
                    // A former name (renamed or transferred) resolves to the repository under its new one.
                    match org.resolve(&full) {
                        Some(i) if !self.sees_owner(&org.repos[i].owner) => {
                            self.foreign.push(format!("repository {full}"));
                            self.not_found(path, format!("Could not resolve to a Repository with the name '{full}'."))
                        }
                        Some(i) if !self.narrowed_to(org.repos[i].id) => {
                            self.not_found(path, format!("Could not resolve to a Repository with the name '{full}'."))
                        }
                        Some(i) => Out::Obj(Obj::Repo(i)),
                        None => {
                            self.not_found(path, format!("Could not resolve to a Repository with the name '{full}'."))
                        }
                    }
                }
                "organization" => {
                    let login = self.str_arg(f, "login").unwrap_or_default();
                    if login.eq_ignore_ascii_case(&org.login) && self.sees_owner(&org.login) {
                        Out::Obj(Obj::Org)
                    } else {
                        if login.eq_ignore_ascii_case(&org.login) {
                            self.foreign.push(format!("organization {login}"));
                        }
                        self.not_found(
                            path,
                            format!("Could not resolve to an Organization with the login of '{login}'."),
                        )
                    }
                }
                "rateLimit" => Out::Obj(Obj::RateLimit),
                "nodes" => {
                    let ids = match self.arg(f, "ids") {
                        Json::Array(ids) => ids,
                        _ => {
                            return Err(
                                "Argument 'ids' on Field 'nodes' has an invalid value. Expected type '[ID!]!'.".into(),
                            );
                        }
                    };
                    if ids.len() > 100 {
                        return Err(format!("You may not request more than 100 nodes at once ({} asked).", ids.len()));
                    }
                    let items = ids
                        .iter()
                        .map(|id| {
                            let id = id.as_str().unwrap_or_default();
                            self.node(id).unwrap_or_else(|| {
                                Obj::Unresolved(
                                    "NOT_FOUND",
                                    format!("Could not resolve to a node with the global id of '{id}'"),
                                )
                            })
                        })
                        .collect();
                    Out::List(items)
                }
                "node" => {
                    let id = self.str_arg(f, "id").unwrap_or_default();
                    match self.node(&id) {
                        Some(o) => Out::Obj(o),
                        None => {
                            self.not_found(path, format!("Could not resolve to a node with the global id of '{id}'"))
                        }
                    }
                }
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
                    // A repository transferred to another account is no longer the organisation's.
                    let mut repos: Vec<usize> = (0..org.repos.len())
                        .filter(|&k| org.repos[k].owner.eq_ignore_ascii_case(&org.login))
                        .filter(|&k| self.narrowed_to(org.repos[k].id))
                        .collect();
                    let order = self.arg(f, "orderBy");
                    let r = |k: usize| &org.repos[k];
                    match order["field"].as_str() {
                        None | Some("NAME") => repos.sort_by(|&a, &b| r(a).name.cmp(&r(b).name)),
                        Some("CREATED_AT") => repos.sort_by_key(|&k| (r(k).created_at, r(k).id)),
                        Some("PUSHED_AT") => repos.sort_by_key(|&k| (r(k).pushed_at, r(k).id)),
                        Some("UPDATED_AT") => repos.sort_by_key(|&k| (r(k).updated_at, r(k).id)),
                        Some(other) => return Err(format!("the fake does not order repositories by {other}")),
                    }
                    if order["direction"].as_str() == Some("DESC") {
                        repos.reverse();
                    }
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
                        Some(b) => Out::Obj(Obj::Ref(*i, b)),
                        None => Out::Json(Json::Null),
                    },
                    "ref" => {
                        // A fully qualified name first, then a short one, as GitHub resolves it.
                        let name = self.str_arg(f, "qualifiedName").unwrap_or_default();
                        let short = name.strip_prefix("refs/heads/").unwrap_or(&name);
                        match repo.branches.iter().find(|b| b.name == short) {
                            Some(b) => Out::Obj(Obj::Ref(*i, b)),
                            None => Out::Json(Json::Null),
                        }
                    }
                    "deployments" => {
                        let environments: Vec<String> = match self.arg(f, "environments") {
                            Json::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
                            Json::String(s) => vec![s],
                            _ => Vec::new(),
                        };
                        let mut list: Vec<&Deployment> = repo
                            .deployments
                            .iter()
                            .filter(|d| environments.is_empty() || environments.contains(&d.environment))
                            .collect();
                        // Oldest first unless asked otherwise.
                        list.sort_by_key(|d| (d.created_at, d.id));
                        let order = self.arg(f, "orderBy");
                        match (order["field"].as_str(), order["direction"].as_str()) {
                            (None, _) | (Some("CREATED_AT"), Some("ASC")) => {}
                            (Some("CREATED_AT"), Some("DESC")) => list.reverse(),
                            other => return Err(format!("the fake does not order deployments by {other:?}")),
                        }
                        let items = list.into_iter().map(|d| Obj::Deployment(*i, d)).collect();
                        return self.connection(f, "DeploymentConnection", items);
                    }
                    "refs" => {
                        let prefix = self.str_arg(f, "refPrefix").unwrap_or_default();
                        if prefix != "refs/heads/" {
                            return Err(format!("the fake serves refPrefix \"refs/heads/\" only, not {prefix:?}"));
                        }
                        let mut branches: Vec<&Branch> = repo.branches.iter().collect();
                        branches.sort_by(|a, b| a.name.cmp(&b.name));
                        let items = branches.into_iter().map(|b| Obj::Ref(*i, b)).collect();
                        return self.connection(f, "RefConnection", items);
                    }
                    "pullRequest" => {
                        let n = self.arg(f, "number").as_u64().unwrap_or_default();
                        match repo.pulls.iter().find(|p| p.number == n) {
                            Some(p) => Out::Obj(Obj::Pull(*i, p)),
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
                                .map(|p| Obj::Pull(*i, p))
                                .collect(),
                            (None, _) => repo.pulls.iter().filter(|p| keep(p)).map(|p| Obj::Pull(*i, p)).collect(),
                            other => return Err(format!("the fake does not order pull requests by {other:?}")),
                        };
                        return self.connection(f, "PullRequestConnection", items);
                    }
                    _ => return unknown(),
                }
            }
            Obj::Pull(_, p) => Out::Json(match name {
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
                // Generated reviews say nothing (their webhooks' `body` is null).
                "body" => json!(""),
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
            Obj::Ref(i, b) => match name {
                "name" => Out::Json(json!(b.name)),
                "prefix" => Out::Json(json!("refs/heads/")),
                "id" => Out::Json(json!(format!("REF_{}_{}", org.repos[*i].id, b.name))),
                // The default branch's head is the newest commit of its history.
                "target" => match org.repos[*i].commits.iter().rposition(|c| c.sha == b.head_sha) {
                    Some(k) => Out::Obj(Obj::GitCommit(*i, k)),
                    None => Out::Obj(Obj::Commit(&b.head_sha)),
                },
                _ => return unknown(),
            },
            Obj::Commit(oid) => match name {
                "oid" => Out::Json(json!(oid)),
                "history" => {
                    // The head of a default branch generated without history (`OrgSpec.commits` 0) has none.
                    let bare_head = org.repos.iter().any(|r| {
                        r.commits.is_empty()
                            && r.branches.iter().any(|b| b.name == r.default_branch && b.head_sha == *oid)
                    });
                    if !bare_head {
                        return Err("the fake serves `history` on the default branch's commits only".into());
                    }
                    return self.connection(f, "CommitHistoryConnection", Vec::new());
                }
                _ => return unknown(),
            },
            Obj::GitCommit(i, k) => {
                let repo = &org.repos[*i];
                let c = &repo.commits[*k];
                Out::Json(match name {
                    "oid" => json!(c.sha),
                    "abbreviatedOid" => json!(c.sha.get(..7).unwrap_or(&c.sha)),
                    "id" => json!(format!("C_{}", c.sha)),
                    "message" => json!(c.message),
                    "messageHeadline" => json!(c.message.lines().next().unwrap_or_default()),
                    "messageBody" => json!(c.message.split_once("\n\n").map(|(_, body)| body).unwrap_or_default()),
                    "committedDate" | "authoredDate" => time(c.committed_at),
                    "url" => json!(format!("https://github.com/{}/commit/{}", repo.full_name(), c.sha)),
                    "author" | "committer" => return Ok(Out::Obj(Obj::GitActor(c))),
                    "history" => {
                        let since = self.time_arg(f, "since")?;
                        let until = self.time_arg(f, "until")?;
                        // Reachable from this commit, newest first, as `git log` lists them.
                        let items = (0..=*k)
                            .rev()
                            .filter(|&n| {
                                let t = repo.commits[n].committed_at;
                                since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
                            })
                            .map(|n| Obj::GitCommit(*i, n))
                            .collect();
                        return self.connection(f, "CommitHistoryConnection", items);
                    }
                    _ => return unknown(),
                })
            }
            Obj::GitActor(c) => match name {
                "name" => Out::Json(json!(c.author_name)),
                "email" => Out::Json(json!(format!(
                    "{}@users.noreply.github.com",
                    c.author_login.as_deref().unwrap_or("guest")
                ))),
                "date" => Out::Json(time(c.committed_at)),
                "user" => match &c.author_login {
                    Some(login) => Out::Obj(Obj::User(login)),
                    None => Out::Json(Json::Null),
                },
                _ => return unknown(),
            },
            Obj::Deployment(i, d) => match name {
                "databaseId" => Out::Json(json!(d.id)),
                "id" => Out::Json(json!(d.node_id)),
                "createdAt" => Out::Json(time(d.created_at)),
                "updatedAt" => Out::Json(time(d.updated_at)),
                "environment" | "latestEnvironment" | "originalEnvironment" => Out::Json(json!(d.environment)),
                "task" => Out::Json(json!(d.task)),
                "commitOid" => Out::Json(json!(d.sha)),
                "description" => Out::Json(Json::Null),
                "payload" => Out::Json(json!("{}")),
                "creator" => Out::Obj(Obj::User(&d.creator)),
                "state" => Out::Json(json!(deployment_state(d))),
                "ref" => match org.repos[*i].branches.iter().find(|b| b.name == d.git_ref) {
                    Some(b) => Out::Obj(Obj::Ref(*i, b)),
                    None => Out::Json(Json::Null),
                },
                "latestStatus" => match d.latest_status() {
                    Some(st) => Out::Obj(Obj::DeploymentStatus(st)),
                    None => Out::Json(Json::Null),
                },
                "statuses" => {
                    // Newest first, as REST lists them.
                    let items = d.statuses.iter().rev().map(Obj::DeploymentStatus).collect();
                    return self.connection(f, "DeploymentStatusConnection", items);
                }
                _ => return unknown(),
            },
            Obj::DeploymentStatus(st) => Out::Json(match name {
                "id" => json!(st.node_id),
                "state" => json!(st.state.to_ascii_uppercase()),
                "environment" => json!(st.environment),
                "createdAt" => time(st.created_at),
                "updatedAt" => time(st.updated_at),
                "description" => json!(""),
                "logUrl" | "environmentUrl" => Json::Null,
                "creator" => return Ok(Out::Obj(Obj::User(&st.creator))),
                _ => return unknown(),
            }),
            Obj::Run(i, run) => Out::Json(match name {
                "databaseId" => json!(run.id),
                "id" => json!(run.node_id),
                "runNumber" => json!(run.run_number),
                "event" => json!(run.event),
                "createdAt" => time(run.created_at),
                "updatedAt" => time(run.updated_at),
                "resourcePath" => json!(format!("/{}/actions/runs/{}", org.repos[*i].full_name(), run.id)),
                "url" => json!(format!("https://github.com/{}/actions/runs/{}", org.repos[*i].full_name(), run.id)),
                "checkSuite" => return Ok(Out::Obj(Obj::CheckSuite(*i, run))),
                _ => return unknown(),
            }),
            Obj::CheckSuite(i, run) => Out::Json(match name {
                "databaseId" => json!(run.id + 1),
                "id" => json!(format!("CS_{}", run.id + 1)),
                "status" => json!(check_status(&run.status)),
                "conclusion" => json!(run.conclusion.as_deref().map(str::to_ascii_uppercase)),
                "createdAt" => time(run.created_at),
                "updatedAt" => time(run.updated_at),
                "workflowRun" => return Ok(Out::Obj(Obj::Run(*i, run))),
                "checkRuns" => {
                    let items = self.check_runs(f, run)?.into_iter().map(Obj::CheckRun).collect();
                    return self.connection(f, "CheckRunConnection", items);
                }
                _ => return unknown(),
            }),
            Obj::CheckRun(j) => Out::Json(match name {
                "databaseId" => json!(j.id),
                "id" => json!(j.node_id),
                "name" => json!(j.name),
                "status" => json!(check_status(&j.status)),
                "conclusion" => json!(j.conclusion.as_deref().map(str::to_ascii_uppercase)),
                "startedAt" => time(j.started_at),
                "completedAt" => j.completed_at.map(time).unwrap_or(Json::Null),
                _ => return unknown(),
            }),
            Obj::Unresolved(..) => return unknown(),
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
                // A withheld node comes back null, like the list's item.
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
        run_as(org, q, vars, Access::default())
    }

    fn run_as(org: &Org, q: &str, vars: Json, access: Access<'_>) -> Json {
        execute(org, &Index::new(org), q, &vars, (5000, 5000, chrono::Utc::now()), &[], access).body
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

    /// Walk `pullRequests(first: 100)` of 250 pull requests: (each page's length, the numbers seen, sorted).
    fn walk(org: &Org, access: Access<'_>) -> (Vec<usize>, Vec<u64>) {
        let q = "query P($after: String) { repository(owner: \"octo-org\", name: \"repo-0\") {
                   pullRequests(first: 100, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
                     nodes { number updatedAt } pageInfo { hasNextPage endCursor } } } }";
        let (mut after, mut seen, mut lengths) = (Json::Null, Vec::new(), Vec::new());
        loop {
            let out = run_as(org, q, json!({ "after": after }), access);
            let conn = &out["data"]["repository"]["pullRequests"];
            let nodes = conn["nodes"].as_array().unwrap();
            lengths.push(nodes.len());
            seen.extend(nodes.iter().map(|n| n["number"].as_u64().unwrap()));
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
        seen.sort();
        (lengths, seen)
    }

    #[test]
    fn cursors_walk_every_item_once() {
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 250, ..OrgSpec::default() });
        let (lengths, seen) = walk(&org, Access::default());
        assert_eq!(lengths, [100, 100, 50], "three pages");
        assert_eq!(seen, (1..=250).collect::<Vec<u64>>());
    }

    #[test]
    fn a_page_cap_gives_shorter_pages_that_still_walk_every_item_once() {
        // GIVEN 250 pull requests served at most 40 a page WHEN a client asks for 100 a page
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 250, ..OrgSpec::default() });
        let (lengths, seen) = walk(&org, Access { page_cap: Some(40), ..Access::default() });
        // THEN it gets pages of 40 and, following hasNextPage, every pull request once
        assert_eq!(lengths, [40, 40, 40, 40, 40, 40, 10], "seven pages");
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
