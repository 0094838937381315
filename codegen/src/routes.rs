//! Server routes: one trait per lexicon namespace, plus a function
//! mounting its methods on an axum router.
//!
//! For the namespace `com.atproto.repo` (every query, procedure and
//! subscription whose NSID is `com.atproto.repo.<name>`), the namespace
//! module `crate::lexicons::com::atproto::repo` gets, behind
//! `#[cfg(feature = "server")]`:
//!
//! ```text
//! pub trait ComAtprotoRepo: xrpc::XrpcState {
//!     type CreateRecordAuth: xrpc::XrpcAuth<Self>;
//!     fn create_record(&self, auth: Self::CreateRecordAuth,
//!         req: xrpc::XrpcRequest<create_record::Params, create_record::Input>)
//!         -> impl Future<Output = Result<create_record::Output,
//!                                        xrpc::XrpcError<create_record::Error>>> + Send
//!     { /* default: 501 MethodNotImplemented */ }
//!     ...
//! }
//! pub fn routes<S: ComAtprotoRepo>() -> xrpc::Router<S> { ... }
//! impl xrpc::XrpcErrorName for create_record::Error { ... }
//! ```
//!
//! * The request input is the generated `Input` for JSON bodies,
//!   `xrpc::BinaryInput` for other encodings and `()` for none; the
//!   output likewise (`Output`, `xrpc::BinaryOutput`, `()`).
//!   Subscriptions take an `xrpc::WebSocketUpgrade` and return an
//!   `xrpc::Response`.
//! * `routes()` mounts each method whose auth type is implemented
//!   (`XrpcAuth::IMPLEMENTED`; `xrpc::NotImplemented` is not), through
//!   `XrpcState::layer_route`. All the work is in the shared runtime
//!   functions `xrpc::query`, `xrpc::procedure` and `xrpc::subscription`;
//!   each method adds an associated type, a default method and a few lines
//!   of mounting.
//!
//! [`namespace_routes`] gives one namespace's items as formatted source;
//! [`namespaces`] lists the namespaces of a catalog with their methods.

use std::collections::BTreeMap;

use atproto_lexicon::{Catalog, LexDef, LexXrpcBody};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::error::CodegenError;
use crate::naming::{self, Names};

/// The Cargo feature gating the generated server code.
pub const SERVER_FEATURE: &str = "server";

/// What kind of XRPC method a route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// HTTP GET.
    Query,
    /// HTTP POST.
    Procedure,
    /// WebSocket event stream.
    Subscription,
}

/// How a request or response body is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    None,
    /// JSON, typed by the generated `Input` / `Output`.
    Json,
    /// Any other encoding, streamed.
    Binary,
}

/// One method of a namespace.
#[derive(Debug, Clone)]
pub struct Method {
    /// The full NSID.
    pub nsid: String,
    /// The last NSID segment (`createRecord`).
    pub name: String,
    /// Query, procedure or subscription.
    pub kind: MethodKind,
    /// The request body.
    pub input: BodyKind,
    /// The input encoding, when there is an input.
    pub input_encoding: Option<String>,
    /// The response body.
    pub output: BodyKind,
    /// The output encoding, when there is an output.
    pub output_encoding: Option<String>,
    /// The lexicon's description.
    pub description: Option<String>,
}

fn body_kind(body: Option<&LexXrpcBody>) -> BodyKind {
    match body {
        None => BodyKind::None,
        Some(b) if naming::is_json_body(b) => BodyKind::Json,
        Some(_) => BodyKind::Binary,
    }
}

/// The namespaces of `catalog` (an NSID without its last segment) with
/// their methods, sorted by NSID.
pub fn namespaces(catalog: &Catalog) -> BTreeMap<String, Vec<Method>> {
    let mut out: BTreeMap<String, Vec<Method>> = BTreeMap::new();
    for doc in catalog.docs() {
        let nsid = doc.id.as_str();
        let Some((namespace, name)) = nsid.rsplit_once('.') else {
            continue;
        };
        let method = match doc.main() {
            Some(LexDef::Query(q)) => Method {
                nsid: nsid.to_owned(),
                name: name.to_owned(),
                kind: MethodKind::Query,
                input: BodyKind::None,
                input_encoding: None,
                output: body_kind(q.output.as_ref()),
                output_encoding: q.output.as_ref().map(|b| b.encoding.clone()),
                description: q.description.clone(),
            },
            Some(LexDef::Procedure(p)) => Method {
                nsid: nsid.to_owned(),
                name: name.to_owned(),
                kind: MethodKind::Procedure,
                input: body_kind(p.input.as_ref()),
                input_encoding: p.input.as_ref().map(|b| b.encoding.clone()),
                output: body_kind(p.output.as_ref()),
                output_encoding: p.output.as_ref().map(|b| b.encoding.clone()),
                description: p.description.clone(),
            },
            Some(LexDef::Subscription(s)) => Method {
                nsid: nsid.to_owned(),
                name: name.to_owned(),
                kind: MethodKind::Subscription,
                input: BodyKind::None,
                input_encoding: None,
                output: BodyKind::None,
                output_encoding: None,
                description: s.description.clone(),
            },
            _ => continue,
        };
        out.entry(namespace.to_owned()).or_default().push(method);
    }
    for methods in out.values_mut() {
        methods.sort_by(|a, b| a.nsid.cmp(&b.nsid));
    }
    out
}

/// The trait name of a namespace: `com.atproto.repo` → `ComAtprotoRepo`.
pub fn trait_name(namespace: &str) -> String {
    namespace
        .split('.')
        .map(naming::pascal_ident)
        .collect::<Vec<_>>()
        .concat()
}

/// The trait method name of a method: `createRecord` → `create_record`.
pub fn method_name(name: &str) -> String {
    naming::module_ident(name)
}

/// The associated auth type of a method: `createRecord` →
/// `CreateRecordAuth`.
pub fn auth_type_name(name: &str) -> String {
    format!("{}Auth", naming::pascal_ident(name))
}

fn path(s: &str) -> Result<TokenStream, CodegenError> {
    s.parse()
        .map_err(|e| CodegenError::Internal(format!("bad path {s:?}: {e}")))
}

fn doc_attrs(text: Option<&str>) -> TokenStream {
    let lines: Vec<String> = text
        .unwrap_or("")
        .lines()
        .map(|l| format!(" {}", l.trim_end()))
        .collect();
    quote! { #(#[doc = #lines])* }
}

/// The server items of one namespace (see the module docs), as Rust
/// tokens. `rt` is the path of the crate holding the runtime (`crate` in
/// `atproto-types`, `::atproto_types` elsewhere); generated types are
/// found through `names`.
pub fn namespace_tokens(
    names: &Names,
    rt: &str,
    namespace: &str,
    methods: &[Method],
) -> Result<TokenStream, CodegenError> {
    let xrpc = path(&format!("{rt}::xrpc"))?;
    let trait_ident = format_ident!("{}", trait_name(namespace));
    let mut assoc = Vec::new();
    let mut fns = Vec::new();
    let mut mounts = Vec::new();
    let mut error_impls = Vec::new();
    let mut fn_scope = naming::NameScope::new();
    let mut type_scope = naming::NameScope::new();
    for m in methods {
        // The items are appended to the namespace module, so the method's
        // module is a child: `self::create_record`.
        let _ = names;
        let child = m.nsid.rsplit('.').next().unwrap_or(&m.nsid);
        let module = path(&format!("self::{}", naming::module_ident(child)))?;
        let method_ident = format_ident!("{}", fn_scope.alloc(&method_name(&m.name), "_"));
        let auth_ident = format_ident!("{}", type_scope.alloc(&auth_type_name(&m.name), ""));
        let nsid = &m.nsid;
        let auth_doc = format!(" Auth policy of `{nsid}`: an [`XrpcAuth`]({rt}::xrpc::XrpcAuth) type, or [`NotImplemented`]({rt}::xrpc::NotImplemented) to leave the method unmounted.");
        assoc.push(quote! {
            #[doc = #auth_doc]
            type #auth_ident: #xrpc::XrpcAuth<Self>;
        });
        let input_ty = match (m.kind, m.input) {
            (MethodKind::Subscription, _) => quote!(#xrpc::WebSocketUpgrade),
            (_, BodyKind::None) => quote!(()),
            (_, BodyKind::Json) => quote!(#module::Input),
            (_, BodyKind::Binary) => quote!(#xrpc::BinaryInput),
        };
        let output_ty = match (m.kind, m.output) {
            (MethodKind::Subscription, _) => quote!(#xrpc::Response),
            (_, BodyKind::None) => quote!(()),
            (_, BodyKind::Json) => quote!(#module::Output),
            (_, BodyKind::Binary) => quote!(#xrpc::BinaryOutput),
        };
        let verb = match m.kind {
            MethodKind::Query => "GET",
            MethodKind::Procedure => "POST",
            MethodKind::Subscription => "GET (WebSocket)",
        };
        let mut doc = format!("`{verb} /xrpc/{nsid}`");
        if let Some(d) = &m.description {
            doc.push_str("\n\n");
            doc.push_str(d);
        }
        let docs = doc_attrs(Some(&doc));
        fns.push(quote! {
            #docs
            fn #method_ident(
                &self,
                auth: Self::#auth_ident,
                req: #xrpc::XrpcRequest<#module::Params, #input_ty>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#output_ty, #xrpc::XrpcError<#module::Error>>,
            > + Send {
                let _ = (auth, req);
                async { ::core::result::Result::Err(#xrpc::XrpcError::method_not_implemented()) }
            }
        });
        let handler = quote! {
            |s: S, a, r| async move { <S as #trait_ident>::#method_ident(&s, a, r).await }
        };
        let codec = |kind: BodyKind, encoding: Option<&String>, input: bool| match kind {
            BodyKind::None if input => quote!(#xrpc::NoInput),
            BodyKind::None => quote!(#xrpc::NoOutput),
            BodyKind::Json if input => quote!(#xrpc::JsonInput),
            BodyKind::Json => quote!(#xrpc::JsonOutput),
            BodyKind::Binary => {
                let enc = encoding.map(String::as_str).unwrap_or("*/*");
                if input {
                    quote!(#xrpc::BinaryInputCodec(#enc))
                } else {
                    quote!(#xrpc::BinaryOutputCodec(#enc))
                }
            }
        };
        let route = match m.kind {
            MethodKind::Query => {
                let out = codec(m.output, m.output_encoding.as_ref(), false);
                quote!(#xrpc::query(#module::NSID, #out, #handler))
            }
            MethodKind::Procedure => {
                let inp = codec(m.input, m.input_encoding.as_ref(), true);
                let out = codec(m.output, m.output_encoding.as_ref(), false);
                quote!(#xrpc::procedure(#module::NSID, #inp, #out, #handler))
            }
            MethodKind::Subscription => quote!(#xrpc::subscription(#module::NSID, #handler)),
        };
        mounts.push(quote! {
            if <S::#auth_ident as #xrpc::XrpcAuth<S>>::IMPLEMENTED {
                router = #xrpc::mount(router, #module::NSID, #route);
            }
        });
        error_impls.push(quote! {
            #[cfg(feature = "server")]
            impl #xrpc::XrpcErrorName for #module::Error {
                fn error_name(&self) -> &str {
                    self.as_str()
                }
            }
        });
    }
    let trait_doc = format!(
        " The server side of the `{namespace}` methods: implement it, pick each method's auth type, and mount [`routes`]. Methods whose auth type is [`NotImplemented`]({rt}::xrpc::NotImplemented) are not mounted and answer 501 if called directly."
    );
    let routes_doc = format!(
        " Routes of the implemented `{namespace}` methods at `/xrpc/<nsid>` (GET for queries and subscriptions, POST for procedures), each through [`XrpcState::layer_route`]({rt}::xrpc::XrpcState::layer_route)."
    );
    Ok(quote! {
        #[doc = #trait_doc]
        #[cfg(feature = "server")]
        pub trait #trait_ident: #xrpc::XrpcState {
            #(#assoc)*
            #(#fns)*
        }

        #[doc = #routes_doc]
        #[cfg(feature = "server")]
        pub fn routes<S: #trait_ident>() -> #xrpc::Router<S> {
            #[allow(unused_mut)]
            let mut router = #xrpc::Router::new();
            #(#mounts)*
            router
        }

        #(#error_impls)*
    })
}

/// [`namespace_tokens`] formatted as a source file fragment.
pub fn namespace_routes(
    names: &Names,
    rt: &str,
    namespace: &str,
    methods: &[Method],
) -> Result<String, CodegenError> {
    let tokens = namespace_tokens(names, rt, namespace, methods)?;
    let file: syn::File = syn::parse2(tokens)
        .map_err(|e| CodegenError::Internal(format!("routes of {namespace}: {e}")))?;
    Ok(prettyplease::unparse(&file))
}

/// The server items of every namespace of `catalog`, formatted, keyed by
/// namespace (to append to each namespace's module).
pub fn all_namespace_routes(
    catalog: &Catalog,
    names: &Names,
    rt: &str,
) -> Result<BTreeMap<String, String>, CodegenError> {
    namespaces(catalog)
        .into_iter()
        .map(|(ns, methods)| Ok((ns.clone(), namespace_routes(names, rt, &ns, &methods)?)))
        .collect()
}

/// Append the server items of every namespace to the generated module
/// file of that namespace (`lexicons/<ns path>/mod.rs`) in `files`, as
/// written by [`generate`](crate::generate). Namespaces whose module file
/// is missing are reported as an internal error.
pub fn append_routes(
    catalog: &Catalog,
    names: &Names,
    rt: &str,
    files: &mut [crate::GeneratedFile],
) -> Result<(), CodegenError> {
    for (namespace, source) in all_namespace_routes(catalog, names, rt)? {
        let file = std::path::PathBuf::from(naming::module_file(&namespace));
        let Some(f) = files.iter_mut().find(|f| f.path == file) else {
            return Err(CodegenError::Internal(format!(
                "no module file {} for the routes of {namespace}",
                file.display()
            )));
        };
        if !f.contents.ends_with("\n\n") {
            f.contents.push('\n');
        }
        f.contents.push_str(&source);
    }
    Ok(())
}
