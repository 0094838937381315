//! Visiting every reference inside a definition.

use crate::diag::{render_path, Seg};
use crate::model::*;

/// Where a reference appears; decides which targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefSite {
    /// A `ref` field schema (or array items, or a body schema `ref`).
    Ref,
    /// One of the `refs` of a `union` (including subscription messages).
    UnionVariant,
}

/// An owned JSON path step, for paths built while walking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathStep {
    Key(String),
    Static(&'static str),
    Index(usize),
}

pub(crate) fn render_steps(steps: &[PathStep]) -> String {
    let segs: Vec<Seg<'_>> = steps
        .iter()
        .map(|s| match s {
            PathStep::Key(k) => Seg::Key(k),
            PathStep::Static(k) => Seg::Key(k),
            PathStep::Index(i) => Seg::Index(*i),
        })
        .collect();
    render_path(&segs)
}

impl LexDef {
    /// Call `f` on every reference inside this definition (depth first,
    /// in property-name order), with where it appears.
    pub fn for_each_ref<'a>(&'a self, mut f: impl FnMut(&'a LexRef, RefSite)) {
        let mut path = Vec::new();
        walk_def(self, &mut path, &mut |r, site, _| f(r, site));
    }
}

impl LexType {
    /// Call `f` on every reference inside this schema.
    pub fn for_each_ref<'a>(&'a self, mut f: impl FnMut(&'a LexRef, RefSite)) {
        let mut path = Vec::new();
        walk_type(self, &mut path, &mut |r, site, _| f(r, site));
    }
}

type Visit<'a, 'f> = dyn FnMut(&'a LexRef, RefSite, &[PathStep]) + 'f;
type VisitMut<'f> = dyn FnMut(&mut LexRef, RefSite, &[PathStep]) + 'f;

pub(crate) fn walk_def<'a>(def: &'a LexDef, path: &mut Vec<PathStep>, f: &mut Visit<'a, '_>) {
    match def {
        LexDef::Record(r) => {
            path.push(PathStep::Static("record"));
            walk_object(&r.record, path, f);
            path.pop();
        }
        LexDef::Query(q) => {
            walk_body(q.output.as_ref(), "output", path, f);
        }
        LexDef::Procedure(p) => {
            walk_body(p.input.as_ref(), "input", path, f);
            walk_body(p.output.as_ref(), "output", path, f);
        }
        LexDef::Subscription(s) => {
            if let Some(m) = &s.message {
                path.push(PathStep::Static("message"));
                path.push(PathStep::Static("schema"));
                walk_union(&m.schema, path, f);
                path.pop();
                path.pop();
            }
        }
        LexDef::Object(o) => walk_object(o, path, f),
        LexDef::Array(a) => walk_array(a, path, f),
        LexDef::PermissionSet(_)
        | LexDef::Token(_)
        | LexDef::Boolean(_)
        | LexDef::Integer(_)
        | LexDef::String(_)
        | LexDef::Bytes(_)
        | LexDef::CidLink(_)
        | LexDef::Blob(_)
        | LexDef::Unsupported(_) => {}
    }
}

fn walk_body<'a>(
    body: Option<&'a LexXrpcBody>,
    key: &'static str,
    path: &mut Vec<PathStep>,
    f: &mut Visit<'a, '_>,
) {
    let Some(schema) = body.and_then(|b| b.schema.as_ref()) else {
        return;
    };
    path.push(PathStep::Static(key));
    path.push(PathStep::Static("schema"));
    match schema {
        LexBodySchema::Object(o) => walk_object(o, path, f),
        LexBodySchema::Ref(r) => {
            path.push(PathStep::Static("ref"));
            f(r, RefSite::Ref, path);
            path.pop();
        }
        LexBodySchema::Union(u) => walk_union(u, path, f),
    }
    path.pop();
    path.pop();
}

fn walk_object<'a>(o: &'a LexObject, path: &mut Vec<PathStep>, f: &mut Visit<'a, '_>) {
    path.push(PathStep::Static("properties"));
    for (name, t) in &o.properties {
        path.push(PathStep::Key(name.clone()));
        walk_type(t, path, f);
        path.pop();
    }
    path.pop();
}

fn walk_array<'a>(a: &'a LexArray, path: &mut Vec<PathStep>, f: &mut Visit<'a, '_>) {
    path.push(PathStep::Static("items"));
    walk_type(&a.items, path, f);
    path.pop();
}

fn walk_union<'a>(u: &'a LexUnion, path: &mut Vec<PathStep>, f: &mut Visit<'a, '_>) {
    path.push(PathStep::Static("refs"));
    for (i, r) in u.refs.iter().enumerate() {
        path.push(PathStep::Index(i));
        f(r, RefSite::UnionVariant, path);
        path.pop();
    }
    path.pop();
}

pub(crate) fn walk_type<'a>(t: &'a LexType, path: &mut Vec<PathStep>, f: &mut Visit<'a, '_>) {
    match t {
        LexType::Array(a) => walk_array(a, path, f),
        LexType::Object(o) => walk_object(o, path, f),
        LexType::Ref(r) => {
            path.push(PathStep::Static("ref"));
            f(r, RefSite::Ref, path);
            path.pop();
        }
        LexType::Union(u) => walk_union(u, path, f),
        LexType::Boolean(_)
        | LexType::Integer(_)
        | LexType::String(_)
        | LexType::Bytes(_)
        | LexType::CidLink(_)
        | LexType::Blob(_)
        | LexType::Unknown(_)
        | LexType::Unsupported(_) => {}
    }
}

// The same walk, mutably (used once, to store resolved targets).

pub(crate) fn walk_def_mut(def: &mut LexDef, path: &mut Vec<PathStep>, f: &mut VisitMut<'_>) {
    match def {
        LexDef::Record(r) => {
            path.push(PathStep::Static("record"));
            walk_object_mut(&mut r.record, path, f);
            path.pop();
        }
        LexDef::Query(q) => walk_body_mut(q.output.as_mut(), "output", path, f),
        LexDef::Procedure(p) => {
            walk_body_mut(p.input.as_mut(), "input", path, f);
            walk_body_mut(p.output.as_mut(), "output", path, f);
        }
        LexDef::Subscription(s) => {
            if let Some(m) = &mut s.message {
                path.push(PathStep::Static("message"));
                path.push(PathStep::Static("schema"));
                walk_union_mut(&mut m.schema, path, f);
                path.pop();
                path.pop();
            }
        }
        LexDef::Object(o) => walk_object_mut(o, path, f),
        LexDef::Array(a) => walk_array_mut(a, path, f),
        LexDef::PermissionSet(_)
        | LexDef::Token(_)
        | LexDef::Boolean(_)
        | LexDef::Integer(_)
        | LexDef::String(_)
        | LexDef::Bytes(_)
        | LexDef::CidLink(_)
        | LexDef::Blob(_)
        | LexDef::Unsupported(_) => {}
    }
}

fn walk_body_mut(
    body: Option<&mut LexXrpcBody>,
    key: &'static str,
    path: &mut Vec<PathStep>,
    f: &mut VisitMut<'_>,
) {
    let Some(schema) = body.and_then(|b| b.schema.as_mut()) else {
        return;
    };
    path.push(PathStep::Static(key));
    path.push(PathStep::Static("schema"));
    match schema {
        LexBodySchema::Object(o) => walk_object_mut(o, path, f),
        LexBodySchema::Ref(r) => {
            path.push(PathStep::Static("ref"));
            f(r, RefSite::Ref, path);
            path.pop();
        }
        LexBodySchema::Union(u) => walk_union_mut(u, path, f),
    }
    path.pop();
    path.pop();
}

fn walk_object_mut(o: &mut LexObject, path: &mut Vec<PathStep>, f: &mut VisitMut<'_>) {
    path.push(PathStep::Static("properties"));
    for (name, t) in o.properties.iter_mut() {
        path.push(PathStep::Key(name.clone()));
        walk_type_mut(t, path, f);
        path.pop();
    }
    path.pop();
}

fn walk_array_mut(a: &mut LexArray, path: &mut Vec<PathStep>, f: &mut VisitMut<'_>) {
    path.push(PathStep::Static("items"));
    walk_type_mut(&mut a.items, path, f);
    path.pop();
}

fn walk_union_mut(u: &mut LexUnion, path: &mut Vec<PathStep>, f: &mut VisitMut<'_>) {
    path.push(PathStep::Static("refs"));
    for (i, r) in u.refs.iter_mut().enumerate() {
        path.push(PathStep::Index(i));
        f(r, RefSite::UnionVariant, path);
        path.pop();
    }
    path.pop();
}

fn walk_type_mut(t: &mut LexType, path: &mut Vec<PathStep>, f: &mut VisitMut<'_>) {
    match t {
        LexType::Array(a) => walk_array_mut(a, path, f),
        LexType::Object(o) => walk_object_mut(o, path, f),
        LexType::Ref(r) => {
            path.push(PathStep::Static("ref"));
            f(r, RefSite::Ref, path);
            path.pop();
        }
        LexType::Union(u) => walk_union_mut(u, path, f),
        LexType::Boolean(_)
        | LexType::Integer(_)
        | LexType::String(_)
        | LexType::Bytes(_)
        | LexType::CidLink(_)
        | LexType::Blob(_)
        | LexType::Unknown(_)
        | LexType::Unsupported(_) => {}
    }
}
