//! Repositories that moved (renamed or transferred), on DynamoDB: alias items,
//! the canonical names every write and read resolves to, and moving a
//! repository (the rules are in `adapters/repo_moves.rs`; the items and their
//! cost in shared/docs/dynamodb.md).
//!
//! A move records its alias first, then re-keys the repository's items
//! (`rekey.rs`): new items written under the new name by the ordinary
//! last-writer-wins writes, then the old ones deleted. A move cut short is
//! finished by applying it again (its delivery is retried): the alias already
//! says where `from` went, and whatever is still under `from` moves.

use std::collections::{HashMap, HashSet};

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, corrupt};
use crate::adapters::repo_moves::{Alias, answers_for, plan_move, repo_ids, repo_of, under};
use crate::domain::{Change, RepoName, Timestamp};
use crate::ports::StoreError;

/// Aliases followed at most this far (they are kept pointing at a canonical
/// name, so one step is the rule; more only while a move is being applied).
const MAX_HOPS: usize = 8;

/// Set on a repository item by the move away from its name, before the move's
/// alias is written (the target's name): a delivery naming the item's name
/// then reads the alias items as it would without the item.
pub(super) const MOVING: &str = "moving_to";

/// The repository items one `apply_all` read to resolve its names (None: no
/// item under that name), each handed once to the first write of that item
/// ([`DynamoStore::apply_repository`]'s first read) and taken out of the map.
pub(super) type Held = std::sync::Mutex<HashMap<RepoName, Option<Item>>>;

impl DynamoStore {
    /// The alias item of `name`, if it is an old name of a repository.
    async fn alias_of(&self, name: &RepoName) -> Result<Option<Alias>, StoreError> {
        let Some(i) = self.get(key_of(key::alias(name), key::ONE)).await? else { return Ok(None) };
        let alias = (|| {
            Ok::<_, anyhow::Error>(Alias {
                canonical: i.req_typed("canonical")?,
                at: i.req_time("moved_at")?,
                id: i.num("id"),
            })
        })()
        .map_err(corrupt)?;
        Ok(Some(alias))
    }

    /// GitHub's id of the repository stored under each of `names`, where one
    /// is and its id is known (one BatchGetItem, consistent reads).
    async fn holders(&self, names: &[&RepoName]) -> Result<HashMap<RepoName, i64>, StoreError> {
        let items = self.repository_items(names).await?;
        Ok(items.into_iter().filter_map(|(name, item)| Some((name, item?.num::<i64>("id")?))).collect())
    }

    /// The current name of each of `names` that is an old one (one
    /// BatchGetItem per step of a chain, consistent reads) of the repository
    /// stored under it, if any (a read: see [`Self::canonical_names_for`]).
    pub(super) async fn canonical_names(&self, names: &[RepoName]) -> Result<HashMap<RepoName, RepoName>, StoreError> {
        self.canonical_names_for(names, &HashMap::new()).await
    }

    /// [`Self::canonical_names`] for writes of the repositories whose GitHub
    /// ids `ids` gives by name: an old name answers only for the repository
    /// that moved away from it (`repo_moves::answers_for`); a name without an
    /// id given is asked for the repository stored under it (one more
    /// BatchGetItem, only for old names whose alias carries an id).
    pub(super) async fn canonical_names_for(
        &self,
        names: &[RepoName],
        ids: &HashMap<RepoName, i64>,
    ) -> Result<HashMap<RepoName, RepoName>, StoreError> {
        let mut hop: HashMap<RepoName, RepoName> = HashMap::new();
        let mut alias_ids: HashMap<RepoName, i64> = HashMap::new();
        let mut asked: HashSet<RepoName> = names.iter().cloned().collect();
        let mut ask: Vec<RepoName> = asked.iter().cloned().collect();
        for _ in 0..MAX_HOPS {
            if ask.is_empty() {
                break;
            }
            let keys = ask.iter().map(|n| key_of(key::alias(n), key::ONE)).collect();
            let mut next = Vec::new();
            for i in self.batch_get(keys).await? {
                let alias: RepoName = i.req_typed("alias").map_err(corrupt)?;
                let canonical: RepoName = i.req_typed("canonical").map_err(corrupt)?;
                if asked.insert(canonical.clone()) {
                    next.push(canonical.clone());
                }
                if let Some(id) = i.num::<i64>("id") {
                    alias_ids.insert(alias.clone(), id);
                }
                hop.insert(alias, canonical);
            }
            ask = next;
        }
        // Old names that another repository may have taken since.
        let unknown: Vec<&RepoName> =
            names.iter().filter(|n| alias_ids.contains_key(*n) && !ids.contains_key(*n)).collect();
        let stored = self.holders(&unknown).await?;
        let mut out = HashMap::new();
        for name in names {
            let holder = ids.get(name).or_else(|| stored.get(name)).copied();
            if !answers_for(alias_ids.get(name).copied(), holder) {
                continue;
            }
            let mut at = name;
            for _ in 0..MAX_HOPS {
                match hop.get(at) {
                    Some(next) if next != name => at = next,
                    _ => break,
                }
            }
            if at != name {
                out.insert(name.clone(), at.clone());
            }
        }
        Ok(out)
    }

    /// The name `name`'s repository is stored under.
    pub(super) async fn canonical(&self, name: &RepoName) -> Result<RepoName, StoreError> {
        Ok(self.canonical_names(std::slice::from_ref(name)).await?.remove(name).unwrap_or_else(|| name.clone()))
    }

    /// [`canonical`](Self::canonical) of an optional filter.
    pub(super) async fn canonical_opt(&self, name: Option<&RepoName>) -> Result<Option<RepoName>, StoreError> {
        match name {
            Some(n) => Ok(Some(self.canonical(n).await?)),
            None => Ok(None),
        }
    }

    /// `changes` with every repository named by its current name, and the
    /// repository items read on the way.
    ///
    /// A name whose GitHub id the changes give (a delivery's repository) is
    /// read first under its own name (one BatchGetItem, consistent): an item
    /// there holding that id, and not being moved away ([`MOVING`]), is that
    /// repository's, and the name is its current one whatever alias items
    /// say (an alias with an id answers only for the repository that moved
    /// away: `answers_for`). Only the other names (new to the store, moved,
    /// held by another repository, or without an id) read their alias items
    /// (one more BatchGetItem). The items read are handed to the batch's
    /// repository writes, which then need no read of their own: a delivery of
    /// a known repository reads its item once.
    pub(super) async fn canonicalise(&self, changes: &[&Change]) -> Result<(Vec<Change>, Held), StoreError> {
        let names: Vec<RepoName> =
            changes.iter().filter_map(|c| repo_of(c)).cloned().collect::<HashSet<_>>().into_iter().collect();
        let ids = repo_ids(changes.iter().copied());
        let with_ids: Vec<&RepoName> = names.iter().filter(|n| ids.contains_key(*n)).collect();
        let read = self.repository_items(&with_ids).await?;
        let own = |n: &RepoName| {
            read.get(n).and_then(Option::as_ref).is_some_and(|i| {
                i.num::<i64>("id").is_some_and(|id| ids.get(n) == Some(&id)) && !i.contains_key(MOVING)
            })
        };
        let rest: Vec<RepoName> = names.iter().filter(|n| !own(n)).cloned().collect();
        let current = if rest.is_empty() { HashMap::new() } else { self.canonical_names_for(&rest, &ids).await? };
        let changes = changes
            .iter()
            .map(|c| match repo_of(c).and_then(|r| current.get(r)) {
                Some(name) => under(c, name),
                None => (*c).clone(),
            })
            .collect();
        Ok((changes, std::sync::Mutex::new(read)))
    }

    /// The repository item under each of `names` (None: none there), one
    /// BatchGetItem, consistent reads.
    async fn repository_items(&self, names: &[&RepoName]) -> Result<HashMap<RepoName, Option<Item>>, StoreError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = names.iter().map(|n| key_of(key::repo(n), key::REPO_SK)).collect();
        let mut out: HashMap<RepoName, Option<Item>> = names.iter().map(|n| ((*n).clone(), None)).collect();
        for i in self.batch_get(keys).await? {
            let name: RepoName = i.req_typed("full_name").map_err(corrupt)?;
            out.insert(name, Some(i));
        }
        Ok(out)
    }

    /// Apply `from -> to`; true if it changed the store.
    pub(super) async fn apply_move(
        &self,
        id: Option<i64>,
        from: &RepoName,
        to: &RepoName,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (from_alias, to_alias) = (self.alias_of(from).await?, self.alias_of(to).await?);
        let holder = match &from_alias {
            Some(a) if a.id.is_some() => self.holders(&[from]).await?.remove(from),
            _ => None,
        };
        let Some(plan) = plan_move(from, to, at, id, from_alias.as_ref(), to_alias.as_ref(), holder) else {
            return Ok(false);
        };
        let target = &plan.target;
        let mut changed = false;
        if plan.write_alias || plan.move_data {
            // Before the alias: from here on a delivery naming `from` reads the aliases.
            changed |= self.mark_moving(from, target, id).await?;
        }
        if plan.unalias_to {
            changed |= self.delete(key_of(key::alias(to), key::ONE), None).await?;
        }
        if plan.write_alias {
            // First: from here on `from` resolves to the target, wherever its items are.
            changed |= self.point_alias(from, target, Some(at), id).await?;
        }
        if plan.move_data {
            let pointing = self.query_all(&Query::index("gsi1", key::aliases_of(from), Range::All)).await?;
            for i in pointing {
                let alias: RepoName = i.req_typed("alias").map_err(corrupt)?;
                if &alias != target {
                    changed |= self.point_alias(&alias, target, None, None).await?;
                }
            }
            changed |= self.move_history(from, target).await?;
        }
        if let Some(id) = id {
            changed |= self.record_id(target, id).await?;
        }
        Ok(changed)
    }

    /// Write (or repoint) the alias item `alias -> canonical`; `at` None keeps its time.
    async fn point_alias(
        &self,
        alias: &RepoName,
        canonical: &RepoName,
        at: Option<Timestamp>,
        id: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut u = Update::default();
        u.set("alias", s(alias.as_str())).set("canonical", s(canonical.as_str()));
        if let Some(at) = &at {
            u.set("moved_at", t(at));
        }
        if let Some(id) = id {
            u.set("id", n(id));
        }
        u.set("gsi1pk", s(key::aliases_of(canonical))).set("gsi1sk", s(alias.as_str()));
        self.update(key_of(key::alias(alias), key::ONE), u).await
    }

    /// Mark the repository item under `from`, if there is one and it is the
    /// moving repository's (GitHub's `id`, where both know it; another
    /// repository that has taken the name since is left as it is), as being
    /// moved to `target`.
    async fn mark_moving(&self, from: &RepoName, target: &RepoName, id: Option<i64>) -> Result<bool, StoreError> {
        let mut u = Update::default();
        u.set(MOVING, s(target.as_str()));
        let pk = u.name("pk");
        let mut cond = format!("attribute_exists({pk})");
        if let Some(id) = id {
            let (a, v) = (u.name("id"), u.value(n(id)));
            cond.push_str(&format!(" AND (attribute_not_exists({a}) OR {a} = {v})"));
        }
        u.condition(cond);
        self.update(key_of(key::repo(from), key::REPO_SK), u).await
    }

    /// Record GitHub's id on the repository item, if the store holds one.
    async fn record_id(&self, repo: &RepoName, id: i64) -> Result<bool, StoreError> {
        let Some(item) = self.get(key_of(key::repo(repo), key::REPO_SK)).await? else { return Ok(false) };
        if item.num::<i64>("id") == Some(id) {
            return Ok(false);
        }
        let mut r = crate::domain::Repository::named(repo.clone());
        r.id = Some(id);
        r.deleted = item.flag("deleted").unwrap_or(false);
        self.apply_repository(&r, None).await
    }
}
