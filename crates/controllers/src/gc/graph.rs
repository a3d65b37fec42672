//! The garbage collector's decisions, as pure functions over one snapshot of
//! the object graph: what to do with a dependent given the states of its
//! owners, and what to do with an owner being deleted given its dependents.
//! The rules follow upstream's attemptToDeleteItem / processDeletingDependentsItem.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// One object as the collector sees it.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub uid: String,
    pub name: String,
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted and waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }
}

/// What an owner reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Exists, being deleted in the foreground.
    Waiting,
    /// Gone, or replaced by an object with another uid.
    Absent,
    /// Could not be resolved (unknown kind, API error): do nothing.
    Unknown,
}

/// A propagation policy for a delete the collector issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Background => "Background",
            Policy::Foreground => "Foreground",
            Policy::Orphan => "Orphan",
        }
    }
}

/// What to do with a dependent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependentAction {
    Keep,
    /// Drop the references with these uids (dangling, or waiting owners while a solid one remains).
    RemoveOwners(Vec<String>),
    Delete(Policy),
}

/// The policy an object's own finalizers ask for when it is collected.
fn policy_from_finalizers(node: &Node) -> Policy {
    if node.has_finalizer(ORPHAN) {
        Policy::Orphan
    } else if node.has_finalizer(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    }
}

/// Decides a dependent's fate from its owners' states (same order as `node.owners`).
pub fn decide_dependent(
    node: &Node,
    has_dependents: bool,
    states: &[OwnerState],
) -> DependentAction {
    if node.deleting || node.owners.is_empty() || states.contains(&OwnerState::Unknown) {
        return DependentAction::Keep;
    }
    let uids_where = |pick: &dyn Fn(OwnerState) -> bool| -> Vec<String> {
        node.owners
            .iter()
            .zip(states)
            .filter(|(_, s)| pick(**s))
            .map(|(r, _)| r.uid.clone())
            .collect()
    };
    if states.contains(&OwnerState::Solid) {
        let gone = uids_where(&|s| s != OwnerState::Solid);
        return if gone.is_empty() {
            DependentAction::Keep
        } else {
            DependentAction::RemoveOwners(gone)
        };
    }
    if states.contains(&OwnerState::Waiting) && has_dependents {
        return DependentAction::Delete(Policy::Foreground);
    }
    DependentAction::Delete(policy_from_finalizers(node))
}

/// What to do with an owner being deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerAction {
    Nothing,
    /// Strip this owner's reference from these dependents (indices), then drop `orphan`.
    Orphan(Vec<usize>),
    /// Drop this finalizer (the owner may then disappear).
    RemoveFinalizer(&'static str),
}

/// Decides for an owner given its dependents (`(index, node)` pairs).
pub fn decide_owner(owner: &Node, dependents: &[(usize, &Node)]) -> OwnerAction {
    if !owner.deleting {
        return OwnerAction::Nothing;
    }
    if owner.has_finalizer(ORPHAN) {
        return OwnerAction::Orphan(dependents.iter().map(|(i, _)| *i).collect());
    }
    if owner.has_finalizer(FOREGROUND) {
        let blocking = dependents.iter().any(|(_, d)| {
            d.owners
                .iter()
                .any(|r| r.uid == owner.uid && r.block_owner_deletion == Some(true))
        });
        if !blocking {
            return OwnerAction::RemoveFinalizer(FOREGROUND);
        }
    }
    OwnerAction::Nothing
}

/// The owner references left after removing `uids`.
pub fn without_owners(refs: &[OwnerReference], uids: &[String]) -> Vec<OwnerReference> {
    refs.iter()
        .filter(|r| !uids.contains(&r.uid))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn node(uid: &str, owners: Vec<OwnerReference>) -> Node {
        Node {
            uid: uid.into(),
            name: uid.into(),
            owners,
            ..Node::default()
        }
    }

    #[test]
    fn dependent_of_a_vanished_owner_is_deleted_in_the_background() {
        let n = node("p", vec![owner_ref("a", true)]);
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Absent]),
            DependentAction::Delete(Policy::Background)
        );
    }

    #[test]
    fn dependent_with_a_solid_owner_only_loses_dangling_refs() {
        let n = node("p", vec![owner_ref("a", true), owner_ref("b", false)]);
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Solid, OwnerState::Solid]),
            DependentAction::Keep
        );
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Absent, OwnerState::Solid]),
            DependentAction::RemoveOwners(vec!["a".into()])
        );
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Solid, OwnerState::Waiting]),
            DependentAction::RemoveOwners(vec!["b".into()])
        );
    }

    #[test]
    fn waiting_owner_propagates_foreground_to_dependents_with_dependents() {
        let n = node("rs", vec![owner_ref("d", true)]);
        assert_eq!(
            decide_dependent(&n, true, &[OwnerState::Waiting]),
            DependentAction::Delete(Policy::Foreground)
        );
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Waiting]),
            DependentAction::Delete(Policy::Background)
        );
    }

    #[test]
    fn unknown_owners_and_deleting_dependents_are_left_alone() {
        let mut n = node("p", vec![owner_ref("a", true)]);
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Unknown]),
            DependentAction::Keep
        );
        n.deleting = true;
        assert_eq!(
            decide_dependent(&n, false, &[OwnerState::Absent]),
            DependentAction::Keep
        );
    }

    #[test]
    fn own_orphan_finalizer_picks_the_policy() {
        let mut n = node("rs", vec![owner_ref("a", true)]);
        n.finalizers = vec![ORPHAN.into()];
        assert_eq!(
            decide_dependent(&n, true, &[OwnerState::Absent]),
            DependentAction::Delete(Policy::Orphan)
        );
    }

    #[test]
    fn foreground_owner_waits_for_blocking_dependents_only() {
        let mut o = node("d", vec![]);
        o.deleting = true;
        o.finalizers = vec![FOREGROUND.into()];
        let blocking = node("rs", vec![owner_ref("d", true)]);
        let loose = node("x", vec![owner_ref("d", false)]);
        assert_eq!(
            decide_owner(&o, &[(0, &blocking), (1, &loose)]),
            OwnerAction::Nothing
        );
        assert_eq!(
            decide_owner(&o, &[(1, &loose)]),
            OwnerAction::RemoveFinalizer(FOREGROUND)
        );
        assert_eq!(
            decide_owner(&o, &[]),
            OwnerAction::RemoveFinalizer(FOREGROUND)
        );
    }

    #[test]
    fn orphaning_owner_strips_every_dependent_then_itself() {
        let mut o = node("d", vec![]);
        o.deleting = true;
        o.finalizers = vec![ORPHAN.into()];
        let a = node("rs", vec![owner_ref("d", true)]);
        assert_eq!(decide_owner(&o, &[(4, &a)]), OwnerAction::Orphan(vec![4]));
        assert_eq!(decide_owner(&o, &[]), OwnerAction::Orphan(vec![]));
        o.deleting = false;
        assert_eq!(decide_owner(&o, &[(4, &a)]), OwnerAction::Nothing);
    }

    #[test]
    fn removing_owner_refs_keeps_the_others() {
        let refs = vec![owner_ref("a", true), owner_ref("b", false)];
        let left = without_owners(&refs, &["a".into()]);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].uid, "b");
    }
}
