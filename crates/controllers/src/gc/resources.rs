//! What the server serves, found through discovery (so new types, CRDs
//! included, are covered): the resources the garbage collector watches and
//! the namespace controller empties, plus a metadata-only object type so
//! watching every resource costs only its metadata.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope};
use kube::discovery::{verbs, Discovery, Scope};
use kube::{Client, Resource};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// Any object, with only its metadata decoded.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct MetaObject {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

impl Resource for MetaObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One served resource (preferred version of its group).
#[derive(Clone, Debug)]
pub struct Served {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub watchable: bool,
    pub deletable: bool,
    pub delete_collection: bool,
}

/// Everything served, and a lookup from (group, kind) for owner references.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    pub all: Vec<Served>,
    by_kind: HashMap<(String, String), usize>,
}

/// Resources the garbage collector leaves alone (as upstream: events).
pub fn gc_ignored(ar: &ApiResource) -> bool {
    ar.plural == "events" && (ar.group.is_empty() || ar.group == "events.k8s.io")
}

/// The group of an `apiVersion` ("apps/v1" → "apps", "v1" → "").
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Resources {
    /// Runs discovery against the server.
    pub async fn discover(client: &Client) -> Result<Resources, kube::Error> {
        let d = Discovery::new(client.clone()).run().await?;
        let mut all = Vec::new();
        for g in d.groups() {
            for (ar, caps) in g.recommended_resources() {
                if !caps.supports_operation(verbs::LIST) {
                    continue;
                }
                all.push(Served {
                    namespaced: caps.scope == Scope::Namespaced,
                    watchable: caps.supports_operation(verbs::WATCH),
                    deletable: caps.supports_operation(verbs::DELETE),
                    delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
                    ar,
                });
            }
        }
        Ok(Resources::from_served(all))
    }

    pub fn from_served(all: Vec<Served>) -> Resources {
        let by_kind = all
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.ar.group.clone(), s.ar.kind.clone()), i))
            .collect();
        Resources { all, by_kind }
    }

    /// The resource an owner reference's apiVersion and kind name.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&Served> {
        self.by_kind
            .get(&(group_of(api_version).to_string(), kind.to_string()))
            .map(|i| &self.all[*i])
    }
}
