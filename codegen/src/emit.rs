//! Emission: the lowered items of one module → formatted Rust source.
//!
//! Structs, aliases and constants are built with `quote` and formatted by
//! `prettyplease`. Enums, unions and records are invocations of the
//! runtime macros (`lex_string_enum!`, `lex_union!`, `lex_error!`,
//! `lex_record!`), written out directly so their bodies stay readable
//! (prettyplease prints macro bodies as flat token streams).

use atproto_lexicon::StringFormat;
use proc_macro2::TokenStream;
use quote::quote;

use crate::error::CodegenError;
use crate::graph::Components;
use crate::ir::{Field, Item, ItemKey, ItemKind, Lowered, Presence, Ty, UnionVariant, Variant};
use crate::naming::{self, Names};

pub(crate) struct Emitter<'a> {
    pub names: &'a Names,
    pub lowered: &'a Lowered,
    pub comps: &'a Components,
    /// Path of the crate holding the runtime (`crate`, `::atproto_types`).
    pub rt: &'a str,
}

impl Emitter<'_> {
    /// The items of module `m`, formatted, separated by blank lines.
    pub fn module_items(&self, m: usize) -> Result<String, CodegenError> {
        let Some(module) = self.lowered.modules.get(m) else {
            return Ok(String::new());
        };
        let mut chunks = Vec::with_capacity(module.items.len());
        for (i, item) in module.items.iter().enumerate() {
            let key = ItemKey { module: m, item: i };
            chunks.push(self.item(key, &module.nsid, item)?);
        }
        Ok(chunks.join("\n"))
    }

    fn item(&self, key: ItemKey, nsid: &str, item: &Item) -> Result<String, CodegenError> {
        match &item.kind {
            ItemKind::Struct {
                fields,
                extra,
                record,
            } => {
                let mut out =
                    self.struct_item(key, nsid, item, fields, *extra, record.is_some())?;
                if let Some(r) = record {
                    out.push_str(&format!(
                        "{}::lex_record!({} = {}, key = {});\n",
                        self.rt,
                        item.name,
                        lit(&r.nsid),
                        lit(&r.key)
                    ));
                }
                Ok(out)
            }
            ItemKind::Union { open, variants } => {
                Ok(self.union_item(key, nsid, item, *open, variants))
            }
            ItemKind::StrEnum { open, values } => Ok(self.enum_item(
                "lex_string_enum",
                if *open { "open enum" } else { "closed enum" },
                item,
                values,
                false,
            )),
            ItemKind::Error { values } => {
                Ok(self.enum_item("lex_error", "enum", item, values, true))
            }
            ItemKind::Alias(ty) => {
                let doc = doc_attrs(&item.doc);
                let name = ident(&item.name)?;
                let ty = parse_ty(&self.ty(key, nsid, ty, true))?;
                format_items(quote! {
                    #(#doc)*
                    pub type #name = #ty;
                })
            }
            ItemKind::Const(value) => {
                let doc = doc_attrs(&item.doc);
                let name = ident(&item.name)?;
                format_items(quote! {
                    #(#doc)*
                    pub const #name: &str = #value;
                })
            }
        }
    }

    fn struct_item(
        &self,
        key: ItemKey,
        nsid: &str,
        item: &Item,
        fields: &[Field],
        extra: bool,
        record: bool,
    ) -> Result<String, CodegenError> {
        let doc = doc_attrs(&item.doc);
        let name = ident(&item.name)?;
        let rt = self.rt;
        let mut field_tokens = Vec::with_capacity(fields.len() + 1);
        let mut all_optional = true;
        for f in fields {
            let fdoc = doc_attrs(&f.doc);
            let fname = ident(&f.name)?;
            let base = self.ty(key, nsid, &f.ty, true);
            let mut serde_args: Vec<TokenStream> = Vec::new();
            if f.name != f.json {
                let json = &f.json;
                serde_args.push(quote!(rename = #json));
            }
            // Data objects (not query parameters) read fields as the
            // lexicon validator does: see `lex::de`.
            let de_with = |name: &str| format!("{rt}::lex::de::{name}");
            let ty = match f.presence {
                Presence::Required => {
                    all_optional = false;
                    let with = match f.ty {
                        Ty::Int if extra => Some(de_with("int")),
                        Ty::Unknown if extra => Some(de_with("unknown")),
                        _ => None,
                    };
                    if let Some(with) = with {
                        serde_args.push(quote!(deserialize_with = #with));
                    }
                    base
                }
                Presence::Optional => {
                    serde_args.push(quote!(skip_serializing_if = "Option::is_none"));
                    if extra {
                        let with = match f.ty {
                            Ty::Int => de_with("opt_int"),
                            Ty::Unknown => de_with("opt_unknown"),
                            _ => de_with("non_null"),
                        };
                        serde_args.push(quote!(default));
                        serde_args.push(quote!(deserialize_with = #with));
                    }
                    format!("Option<{base}>")
                }
                Presence::RequiredNullable => format!("Option<{base}>"),
                Presence::OptionalNullable => {
                    let with = format!("{rt}::lex::deserialize_some");
                    serde_args.push(quote!(default));
                    serde_args.push(quote!(skip_serializing_if = "Option::is_none"));
                    serde_args.push(quote!(deserialize_with = #with));
                    format!("Option<{rt}::lex::Nullable<{base}>>")
                }
                Presence::DefaultVec => {
                    serde_args.push(quote!(default));
                    serde_args.push(quote!(skip_serializing_if = "Vec::is_empty"));
                    base
                }
            };
            let ty = parse_ty(&ty)?;
            let serde_attr = if serde_args.is_empty() {
                quote!()
            } else {
                quote!(#[serde(#(#serde_args),*)])
            };
            field_tokens.push(quote! {
                #(#fdoc)*
                #serde_attr
                pub #fname: #ty,
            });
        }
        if extra {
            let extra_name = ident(naming::EXTRA_FIELD)?;
            let extra_ty = parse_ty(&format!("{rt}::lex::ExtraData"))?;
            let with = format!("{rt}::lex::de::extra_data");
            field_tokens.push(quote! {
                /// Properties not declared in the lexicon, kept as they are.
                #[serde(flatten, deserialize_with = #with)]
                pub #extra_name: #extra_ty,
            });
        }
        let default = if all_optional {
            quote!(Default,)
        } else {
            quote!()
        };
        let remote = if record {
            quote!(#[serde(remote = "Self")])
        } else {
            quote!()
        };
        format_items(quote! {
            #(#doc)*
            #[derive(Debug, Clone, PartialEq, #default ::serde::Serialize, ::serde::Deserialize)]
            #remote
            pub struct #name {
                #(#field_tokens)*
            }
        })
    }

    fn union_item(
        &self,
        key: ItemKey,
        nsid: &str,
        item: &Item,
        open: bool,
        variants: &[UnionVariant],
    ) -> String {
        let mut out = format!("{}::lex_union! {{\n", self.rt);
        push_doc(&mut out, "    ", &item.doc);
        out.push_str(&format!(
            "    pub {} union {} {{",
            if open { "open" } else { "closed" },
            item.name
        ));
        if variants.is_empty() {
            out.push_str("}\n}\n");
            return out;
        }
        out.push('\n');
        for v in variants {
            out.push_str(&format!(
                "        {}({}) = {},\n",
                v.name,
                self.ty(key, nsid, &v.ty, true),
                lit(&v.tag)
            ));
        }
        out.push_str("    }\n}\n");
        out
    }

    fn enum_item(
        &self,
        mac: &str,
        kind: &str,
        item: &Item,
        values: &[Variant],
        variant_docs: bool,
    ) -> String {
        let mut out = format!("{}::{mac}! {{\n", self.rt);
        push_doc(&mut out, "    ", &item.doc);
        out.push_str(&format!("    pub {kind} {} {{", item.name));
        if values.is_empty() {
            out.push_str("}\n}\n");
            return out;
        }
        out.push('\n');
        for v in values {
            if variant_docs {
                push_doc(&mut out, "        ", &v.doc);
            }
            out.push_str(&format!("        {} = {},\n", v.name, lit(&v.value)));
        }
        out.push_str("    }\n}\n");
        out
    }

    /// The Rust type of `ty` used inside item `from` of module `nsid`;
    /// `direct` when the use is by value (not inside a `Vec`), where a
    /// type of the same cycle must be boxed.
    fn ty(&self, from: ItemKey, nsid: &str, ty: &Ty, direct: bool) -> String {
        let rt = self.rt;
        match ty {
            Ty::Bool => "bool".to_owned(),
            Ty::Int => "i64".to_owned(),
            Ty::Str => "String".to_owned(),
            Ty::Format(f) => match format_type(f) {
                Some(t) => format!("{rt}::syntax::{t}"),
                None => "String".to_owned(),
            },
            Ty::Bytes => format!("{rt}::data::Bytes"),
            Ty::CidLink => format!("{rt}::data::CidLink"),
            Ty::Blob => format!("{rt}::data::BlobRef"),
            Ty::Unknown => format!("{rt}::data::Value"),
            Ty::Vec(inner) => format!("Vec<{}>", self.ty(from, nsid, inner, false)),
            Ty::Item(k) => {
                let name = self
                    .lowered
                    .item(*k)
                    .map(|i| i.name.clone())
                    .unwrap_or_else(|| format!("{rt}::data::Value"));
                self.boxed(from, *k, direct, name)
            }
            Ty::Def(d) => {
                let path = if d.nsid.as_str() == nsid {
                    self.names.def_type_name(d).map(str::to_owned)
                } else {
                    self.names.def_path(d)
                };
                let path = path.unwrap_or_else(|| format!("{rt}::data::Value"));
                match self.lowered.def_items.get(d) {
                    Some(k) => self.boxed(from, *k, direct, path),
                    None => path,
                }
            }
        }
    }

    fn boxed(&self, from: ItemKey, to: ItemKey, direct: bool, ty: String) -> String {
        if direct && self.comps.needs_box(from, to) {
            format!("Box<{ty}>")
        } else {
            ty
        }
    }
}

/// The `atproto-syntax` type of a string format.
fn format_type(f: &StringFormat) -> Option<&'static str> {
    Some(match f {
        StringFormat::AtIdentifier => "AtIdentifier",
        StringFormat::AtUri => "AtUri",
        StringFormat::Cid => "CidString",
        StringFormat::Datetime => "Datetime",
        StringFormat::Did => "Did",
        StringFormat::Handle => "Handle",
        StringFormat::Nsid => "Nsid",
        StringFormat::Tid => "Tid",
        StringFormat::RecordKey => "RecordKey",
        StringFormat::Uri => "Uri",
        StringFormat::Language => "Language",
        StringFormat::Other(_) => return None,
    })
}

/// A Rust string literal.
pub(crate) fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn ident(name: &str) -> Result<syn::Ident, CodegenError> {
    syn::parse_str::<syn::Ident>(name)
        .map_err(|e| CodegenError::Internal(format!("bad identifier {name:?}: {e}")))
}

fn parse_ty(s: &str) -> Result<syn::Type, CodegenError> {
    syn::parse_str::<syn::Type>(s)
        .map_err(|e| CodegenError::Internal(format!("bad type {s:?}: {e}")))
}

fn format_items(tokens: TokenStream) -> Result<String, CodegenError> {
    let file: syn::File = syn::parse2(tokens)
        .map_err(|e| CodegenError::Internal(format!("generated code does not parse: {e}")))?;
    Ok(prettyplease::unparse(&file))
}

fn doc_attrs(lines: &[String]) -> Vec<TokenStream> {
    lines
        .iter()
        .map(|l| {
            let text = if l.is_empty() {
                String::new()
            } else {
                format!(" {}", rustdoc_escape(l))
            };
            quote!(#[doc = #text])
        })
        .collect()
}

/// Append `///` lines.
pub(crate) fn push_doc(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            out.push_str(indent);
            out.push_str("///\n");
        } else {
            out.push_str(indent);
            out.push_str("/// ");
            out.push_str(&rustdoc_escape(l));
            out.push('\n');
        }
    }
}

/// Make one line of lexicon prose safe for rustdoc: square brackets and
/// angle brackets are escaped (no accidental links or HTML), bare URLs are
/// wrapped in `<...>`, and a leading code fence is defused (it would
/// become a doctest). Text inside backticks is left alone.
pub(crate) fn rustdoc_escape(line: &str) -> String {
    let line = if line.trim_start().starts_with("```") {
        line.replacen("```", "'''", 1)
    } else {
        line.to_owned()
    };
    let mut out = String::with_capacity(line.len() + 8);
    let mut in_code = false;
    let mut rest = line.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
            rest = &rest[1..];
            continue;
        }
        if !in_code && (rest.starts_with("http://") || rest.starts_with("https://")) {
            let end = rest
                .find(|ch: char| ch.is_whitespace() || ch == '`' || ch == '<' || ch == '>')
                .unwrap_or(rest.len());
            let mut url = &rest[..end];
            while url.ends_with(['.', ',', ')', ';', ':', '\'', '"']) {
                url = &url[..url.len() - 1];
            }
            out.push('<');
            out.push_str(url);
            out.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        if !in_code && matches!(c, '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rustdoc_escape;

    #[test]
    fn escapes() {
        assert_eq!(rustdoc_escape("see [foo] <bar>"), "see \\[foo\\] \\<bar\\>");
        assert_eq!(
            rustdoc_escape("at https://example.com/x."),
            "at <https://example.com/x>."
        );
        assert_eq!(rustdoc_escape("`a [b]` c"), "`a [b]` c");
        assert_eq!(rustdoc_escape("```rust"), "'''rust");
    }
}
