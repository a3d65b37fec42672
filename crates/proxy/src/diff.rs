//! What is in the kernel ([`Ruleset`]: fragments by service-port key, with
//! element reference counts) and the nft transactions that change it: a
//! full one that replaces the whole table atomically (start-up, recovery,
//! periodic resync), and an incremental one that only touches the changed
//! ports' chains, sets and elements, so one Service's change costs the same
//! with 10 or 10 000 Services programmed.
//!
//! Order inside a transaction matters: objects are declared before anything
//! refers to them, and removed only after every reference is gone.

use crate::render::{base, Element, Fragment, TABLE};
use std::collections::BTreeMap;

/// Elements are added or deleted in batches of this many per command.
const BATCH: usize = 500;

/// Changes to apply: port key → its new fragment, or `None` when the port
/// is gone.
pub type Changes = BTreeMap<String, Option<Fragment>>;

/// The programmed table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    frags: BTreeMap<String, Fragment>,
    /// How many fragments hold each element.
    refs: BTreeMap<Element, usize>,
}

impl Ruleset {
    /// A ruleset of exactly these fragments.
    pub fn new(frags: BTreeMap<String, Fragment>) -> Ruleset {
        let mut rs = Ruleset::default();
        for (k, f) in frags {
            rs.insert(k, f);
        }
        rs
    }

    /// The fragments, by port key.
    pub fn fragments(&self) -> &BTreeMap<String, Fragment> {
        &self.frags
    }

    /// Keys of the ports of `service` (`namespace/name`).
    pub fn ports_of<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a String> + 'a {
        let prefix = format!("{service}/");
        self.frags
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(move |k| k.starts_with(&prefix))
    }

    /// Keeps only the entries of `changes` that differ from what is here.
    pub fn effective(&self, changes: Changes) -> Changes {
        changes
            .into_iter()
            .filter(|(k, new)| self.frags.get(k) != new.as_ref())
            .collect()
    }

    /// Records `changes` as applied.
    pub fn commit(&mut self, changes: Changes) {
        for (k, new) in changes {
            if let Some(old) = self.frags.remove(&k) {
                for e in old.elements {
                    if let Some(n) = self.refs.get_mut(&e) {
                        *n -= 1;
                        if *n == 0 {
                            self.refs.remove(&e);
                        }
                    }
                }
            }
            if let Some(f) = new {
                self.insert(k, f);
            }
        }
    }

    fn insert(&mut self, k: String, f: Fragment) {
        for e in &f.elements {
            *self.refs.entry(e.clone()).or_default() += 1;
        }
        self.frags.insert(k, f);
    }

    /// A transaction that (re)creates the table with exactly this ruleset
    /// in it, over whatever was there (stale rules of a crashed run
    /// included).
    pub fn full(&self) -> String {
        let mut out = vec![
            format!("add table {TABLE}"),
            format!("delete table {TABLE}"),
            format!("add table {TABLE}"),
        ];
        out.extend(base());
        for f in self.frags.values() {
            declare(&mut out, f, &Fragment::default());
        }
        for f in self.frags.values() {
            for (name, rules) in &f.chains {
                fill(&mut out, name, rules, false);
            }
        }
        elements(&mut out, "add", self.refs.keys());
        join(out)
    }

    /// A transaction applying `changes` (as filtered by [`Self::effective`])
    /// to this ruleset; `None` when there is nothing to do.
    pub fn incremental(&self, changes: &Changes) -> Option<String> {
        if changes.is_empty() {
            return None;
        }
        let empty = Fragment::default();
        let pairs: Vec<(&Fragment, &Fragment)> = changes
            .iter()
            .map(|(k, new)| {
                (
                    self.frags.get(k).unwrap_or(&empty),
                    new.as_ref().unwrap_or(&empty),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (old, new) in &pairs {
            declare(&mut out, new, old);
        }
        for (old, new) in &pairs {
            for (name, rules) in &new.chains {
                match old.chains.get(name) {
                    Some(prev) if prev == rules => {}
                    Some(_) => fill(&mut out, name, rules, true),
                    None => fill(&mut out, name, rules, false),
                }
            }
        }
        let (gone, added) = self.element_delta(&pairs);
        elements(&mut out, "delete", gone.iter());
        elements(&mut out, "add", added.iter());
        // A chain may only go once nothing jumps to it: flush first, so
        // chains removed together may refer to each other.
        let stale = |f: &(&Fragment, &Fragment)| -> Vec<String> {
            let (old, new) = f;
            old.chains
                .keys()
                .filter(|n| !new.chains.contains_key(*n))
                .cloned()
                .collect()
        };
        let stale: Vec<String> = pairs.iter().flat_map(stale).collect();
        for name in &stale {
            out.push(format!("flush chain {TABLE} {name}"));
        }
        for name in &stale {
            out.push(format!("delete chain {TABLE} {name}"));
        }
        for (old, new) in &pairs {
            for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
                out.push(format!("delete set {TABLE} {name}"));
            }
        }
        Some(join(out))
    }

    /// Elements whose last holder goes, and elements that gain their first.
    fn element_delta(&self, pairs: &[(&Fragment, &Fragment)]) -> (Vec<Element>, Vec<Element>) {
        let mut delta: BTreeMap<&Element, isize> = BTreeMap::new();
        for (old, new) in pairs {
            for e in &old.elements {
                *delta.entry(e).or_default() -= 1;
            }
            for e in &new.elements {
                *delta.entry(e).or_default() += 1;
            }
        }
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        for (e, d) in delta {
            let before = self.refs.get(e).copied().unwrap_or(0) as isize;
            match (before > 0, before + d > 0) {
                (true, false) => gone.push(e.clone()),
                (false, true) => added.push(e.clone()),
                _ => {}
            }
        }
        (gone, added)
    }
}

/// Declares sets and chains of `new` that `old` lacks.
fn declare(out: &mut Vec<String>, new: &Fragment, old: &Fragment) {
    for (name, decl) in &new.sets {
        if !old.sets.contains_key(name) {
            out.push(format!("add set {TABLE} {name} {decl}"));
        }
    }
    for name in new.chains.keys() {
        if !old.chains.contains_key(name) {
            out.push(format!("add chain {TABLE} {name}"));
        }
    }
}

fn fill(out: &mut Vec<String>, chain: &str, rules: &[String], flush: bool) {
    if flush {
        out.push(format!("flush chain {TABLE} {chain}"));
    }
    for r in rules {
        out.push(format!("add rule {TABLE} {chain} {r}"));
    }
}

/// `add`/`delete element` commands, grouped by map, `BATCH` per command.
/// Deletions name only the key.
fn elements<'a>(out: &mut Vec<String>, verb: &str, elems: impl Iterator<Item = &'a Element>) {
    let mut by_map: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (map, key, value) in elems {
        let text = if value.is_empty() || verb == "delete" {
            key.clone()
        } else {
            format!("{key} : {value}")
        };
        by_map.entry(map).or_default().push(text);
    }
    for (map, items) in by_map {
        for chunk in items.chunks(BATCH) {
            out.push(format!(
                "{verb} element {TABLE} {map} {{ {} }}",
                chunk.join(", ")
            ));
        }
    }
}

fn join(mut lines: Vec<String>) -> String {
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests;
