#!/usr/bin/env python3
"""Generates crates/api/src/protobuf/messages.txt: the field numbers, types and
JSON names of the Kubernetes messages the protobuf decoder understands.

Field numbers and wire types come from k8s-pb's prost attributes (generated
from upstream generated.proto); JSON names come from k8s-openapi's serde keys
(generated from upstream's OpenAPI). Both crates must be in the cargo registry
(`cargo fetch` with k8s-openapi; `cargo info k8s-pb@0.9.0` downloads k8s-pb).

Usage: tools/gen_protobuf_table.py > src/protobuf/messages.txt
"""
import glob
import os
import re
import sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))[0]
PB = REG + "k8s-pb-0.9.0/src/"
OA = REG + "k8s-openapi-0.29.0/src/v1_33/"

ROOTS = [
    "api.core.v1.Secret", "api.core.v1.ConfigMap", "api.core.v1.Namespace",
    "api.core.v1.ServiceAccount", "api.core.v1.Service", "api.core.v1.Pod",
    "api.core.v1.Endpoints", "api.core.v1.Event", "api.core.v1.Node",
    "api.core.v1.ResourceQuota", "api.core.v1.PersistentVolumeClaim",
    "api.core.v1.LimitRange", "api.core.v1.Binding",
    "api.apps.v1.Deployment", "api.apps.v1.ReplicaSet", "api.apps.v1.StatefulSet",
    "api.apps.v1.DaemonSet", "api.batch.v1.Job", "api.batch.v1.CronJob",
    "api.rbac.v1.Role", "api.rbac.v1.ClusterRole", "api.rbac.v1.RoleBinding",
    "api.rbac.v1.ClusterRoleBinding", "api.policy.v1.PodDisruptionBudget",
    "api.policy.v1.Eviction", "api.scheduling.v1.PriorityClass",
    "api.networking.v1.Ingress", "api.networking.v1.NetworkPolicy",
    "api.coordination.v1.Lease", "api.discovery.v1.EndpointSlice",
    "api.events.v1.Event", "api.authentication.v1.TokenRequest",
    "api.autoscaling.v1.Scale",
    "apimachinery.pkg.apis.meta.v1.DeleteOptions",
]

# Fields newer than k8s-openapi's v1_33 whose names are not plain camelCase.
RENAMES = {"pod_cid_rs": "podCIDRs", "non_resource_ur_ls": "nonResourceURLs", "u_id": "uid"}

# Go structs embedded with `json:",inline"`; proto gives them a field.
INLINE = {"volume_source", "ephemeral_container_common", "ingress_rule_value", "handler",
          "local_object_reference"}

ATTR = re.compile(r'#\[prost\((.*?)\)\]', re.S)


def parse_pb():
    """module path (dotted) -> struct -> [(tag, snake, kind, type_expr)]"""
    out = {}
    for path in glob.glob(PB + "**/mod.rs", recursive=True):
        mod = os.path.relpath(os.path.dirname(path), PB).replace("/", ".")
        text = open(path).read()
        for m in re.finditer(r'pub struct (\w+) \{(.*?)\n\}', text, re.S):
            name, body = m.group(1), m.group(2)
            body = re.sub(r'^\s*///.*$', '', body, flags=re.M)
            fields = []
            for chunk in body.split("#[prost(")[1:]:
                attr, rest = chunk.split(")]", 1)
                fm = re.match(r'\s*pub (r#)?(\w+):\s*(.*)$', rest, re.S)
                snake, ty = fm.group(2), " ".join(fm.group(3).split()).rstrip(",")
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                fields.append((tag, snake, " ".join(attr.split()), ty))
            out.setdefault(mod, {})[name] = fields
    return out


def parse_oa():
    """(module dotted, struct) -> {snake: json}"""
    out = {}
    for path in glob.glob(OA + "**/*.rs", recursive=True):
        mod = os.path.relpath(os.path.dirname(path), OA).replace("/", ".")
        text = open(path).read()
        sm = re.search(r'pub struct (\w+) \{', text)
        if not sm:
            continue
        keys = dict((s, j) for j, s in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))
        out[(mod, sm.group(1))] = keys
    return out


def resolve(mod, ty):
    """Resolves a prost type path relative to module `mod` to a dotted name."""
    ty = re.sub(r'::core::option::Option<(.*)>', r'\1', ty)
    ty = re.sub(r'::prost::alloc::vec::Vec<(.*)>', r'\1', ty)
    parts = mod.split(".")
    segs = ty.split("::")
    while segs and segs[0] == "super":
        parts = parts[:-1]
        segs = segs[1:]
    return ".".join(parts + segs)


def camel(snake):
    first, *rest = snake.split("_")
    return first + "".join(w[:1].upper() + w[1:] for w in rest)


def main():
    pb = parse_pb()
    oa = parse_oa()
    seen, queue, lines, misses = set(), list(ROOTS), [], []
    while queue:
        full = queue.pop(0)
        if full in seen:
            continue
        seen.add(full)
        mod, name = full.rsplit(".", 1)
        fields = pb[mod][name]
        oamod = mod.replace("api.", "api.", 1)
        keys = oa.get((oamod, name), {})
        lines.append(f"message {full}")
        for tag, snake, attr, ty in sorted(fields):
            kind = attr.split(",")[0].strip()
            json = keys.get(snake) or keys.get(snake + "_") or RENAMES.get(snake)
            if json is None and snake in INLINE:
                # A Go struct embedded with `json:",inline"`: its fields
                # appear in the parent's JSON object.
                json = "-"
            elif json is None:
                json = camel(snake)
                if keys:
                    misses.append(f"{full}.{snake} -> {json}")
            rep = "repeated" in attr
            if kind.startswith("btree_map"):
                k, v = re.search(r'btree_map = "(\w+), (\w+)"', attr).groups()
                if v == "message":
                    vt = resolve(mod, re.search(r'BTreeMap<\s*[^,]+,\s*(.*?),?\s*>$', ty).group(1))
                    queue.append(vt)
                    lines.append(f"{tag} {json} map message {vt}")
                else:
                    lines.append(f"{tag} {json} map {v}")
            elif kind == "message":
                mt = resolve(mod, ty)
                queue.append(mt)
                lines.append(f"{tag} {json} {'repeated ' if rep else ''}message {mt}")
            else:
                kind = kind.split(" ")[0]
                lines.append(f"{tag} {json} {'repeated ' if rep else ''}{kind}")
    print("# Generated by tools/gen_protobuf_table.py from k8s-pb 0.9.0 (field numbers)")
    print("# and k8s-openapi 0.29.0 v1_33 (JSON names). Do not edit by hand.")
    print("\n".join(lines))
    for m in misses:
        print("no json name for", m, file=sys.stderr)


main()
