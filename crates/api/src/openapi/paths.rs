//! The `paths` of a group/version document: collection and item
//! operations per resource, with `x-kubernetes-group-version-kind` and the
//! query parameters kubectl looks for (`fieldValidation` on PATCH turns on
//! server-side validation).

use serde_json::{json, Map, Value};

use super::ResourceDescriptor;

/// The media types listed for PATCH bodies. Strategic merge patch is left
/// out on purpose: listing it makes client-side apply compute the patch
/// from these schemas, which carry no merge keys; without it kubectl uses
/// its compiled-in Go types.
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query("dryRun", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed", "string"),
        query("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", "string"),
        query("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict", "string"),
    ];
    if patch {
        params.push(query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.", "boolean"));
    }
    params
}

fn list_params() -> Vec<Value> {
    vec![
        query("continue", "The continue option should be set when retrieving more results from the server.", "string"),
        query("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything.", "string"),
        query("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything.", "string"),
        query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
        query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from.", "string"),
        query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
        query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"),
    ]
}

fn ok(schema: &Value) -> Value {
    json!({"200": {"description": "OK", "content": {
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
        "application/vnd.kubernetes.protobuf": {"schema": schema}
    }}, "401": {"description": "Unauthorized"}})
}

/// One operation object.
struct Op<'a> {
    id: String,
    action: &'a str,
    gvk: Value,
    params: Vec<Value>,
    body: Option<Value>,
    response: &'a Value,
}

impl Op<'_> {
    fn build(self) -> Value {
        let mut op = json!({
            "operationId": self.id,
            "description": format!("{} the specified resource", self.action),
            "parameters": self.params,
            "responses": ok(self.response),
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = self.body {
            op["requestBody"] = json!({"content": body, "required": true});
        }
        op
    }
}

/// Schemas the paths refer to: the kind, its Scale, Status, Patch, DeleteOptions.
pub(super) struct Refs {
    pub kind: Value,
    pub scale: Option<Value>,
    pub status: Value,
    pub patch: Value,
    pub delete_options: Value,
}

/// The path prefix of a group/version: `/api/v1`, `/apis/apps/v1`.
fn prefix(group: &str, version: &str) -> String {
    format!("/{}", super::group_version_path(group, version))
}

/// Adds the collection, item and subresource paths of one resource.
pub(super) fn add_resource(paths: &mut Map<String, Value>, r: &ResourceDescriptor, refs: &Refs) {
    let ns = if r.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{}{ns}/{}", prefix(&r.group, &r.version), r.plural);
    let item = format!("{collection}/{{name}}");
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let id = |verb: &str, suffix: &str| {
        format!(
            "{verb}{}{}{}{suffix}",
            camel(&r.group),
            camel(&r.version),
            if r.namespaced { "Namespaced" } else { "" }
        ) + &r.kind
    };
    let mut common = vec![];
    if r.namespaced {
        common.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let list_schema = json!({"type": "object", "description": format!("{}List is a list of {}.", r.kind, r.kind)});
    let json_body = |schema: &Value| json!({"*/*": {"schema": schema}});
    let patch_body: Value = PATCH_TYPES
        .iter()
        .map(|t| (t.to_string(), json!({"schema": refs.patch})))
        .collect::<Map<_, _>>()
        .into();
    let op = |id: String, action, params, body, response| {
        Op {
            id,
            action,
            gvk: gvk.clone(),
            params,
            body,
            response,
        }
        .build()
    };

    let mut coll = json!({"parameters": common});
    coll["get"] = op(id("list", ""), "list", list_params(), None, &list_schema);
    coll["post"] = op(
        id("create", ""),
        "post",
        write_params(false),
        Some(json_body(&refs.kind)),
        &refs.kind,
    );
    coll["delete"] = op(
        id("deletecollection", ""),
        "deletecollection",
        list_params(),
        Some(json_body(&refs.delete_options)),
        &refs.status,
    );
    paths.insert(collection, coll);

    let mut item_params = vec![path_param("name", &format!("name of the {}", r.kind))];
    item_params.extend(common.iter().cloned());
    let item_ops = |schema: &Value, suffix: &str, gvk: &Value| {
        let op = |id: String, action, params, body| {
            Op {
                id,
                action,
                gvk: gvk.clone(),
                params,
                body,
                response: schema,
            }
            .build()
        };
        let mut p = json!({"parameters": item_params});
        p["get"] = op(id("read", suffix), "get", vec![], None);
        p["put"] = op(
            id("replace", suffix),
            "put",
            write_params(false),
            Some(json_body(schema)),
        );
        p["patch"] = op(
            id("patch", suffix),
            "patch",
            write_params(true),
            Some(patch_body.clone()),
        );
        p
    };
    let mut main = item_ops(&refs.kind, "", &gvk);
    main["delete"] = op(
        id("delete", ""),
        "delete",
        vec![
            query(
                "dryRun",
                "When present, indicates that modifications should not be persisted.",
                "string",
            ),
            query(
                "gracePeriodSeconds",
                "The duration in seconds before the object should be deleted.",
                "integer",
            ),
            query(
                "propagationPolicy",
                "Whether and how garbage collection will be performed.",
                "string",
            ),
        ],
        Some(json_body(&refs.delete_options)),
        &refs.status,
    );
    paths.insert(item.clone(), main);
    for sub in &r.subresources {
        match sub.as_str() {
            "status" => {
                paths.insert(
                    format!("{item}/status"),
                    item_ops(&refs.kind, "Status", &gvk),
                );
            }
            "scale" => {
                if let Some(scale) = &refs.scale {
                    let scale_gvk =
                        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
                    paths.insert(
                        format!("{item}/scale"),
                        item_ops(scale, "Scale", &scale_gvk),
                    );
                }
            }
            _ => {}
        }
    }
}

/// `apps` → `Apps`, `rbac.authorization.k8s.io` → `RbacAuthorization`, `` → `Core`.
fn camel(s: &str) -> String {
    if s.is_empty() {
        return "Core".into();
    }
    s.trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
