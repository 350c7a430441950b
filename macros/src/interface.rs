//! `#[interface]`: one trait in, the interface pair and its call-object glue out.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use script_glue::script_glue;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, FnArg, Ident, ItemTrait, Lit, Meta, Pat, ReturnType, Token, TraitItem,
    Type,
};

/// The attribute's arguments.
struct Args {
    iid: u128,
    async_iid: u128,
    scripts: bool,
}

/// One method, as declared.
struct Method {
    /// The Rust name, `add`.
    ident: Ident,
    /// The COM name, `Add`: the variant of the `In`/`Out`/`Method` enums.
    com: Ident,
    /// Attributes passed on to the synchronous method (its docs).
    attrs: Vec<Attribute>,
    ins: Vec<(Ident, Type)>,
    outs: Vec<(Ident, Type)>,
    /// The return type as written (`HRESULT` or `(HRESULT, …)`), so that the user's `HRESULT`
    /// is the one named (and a foreign `HRESULT` a type error).
    ret: Type,
}

/// Parses the registry form of a GUID (with or without braces); `None` if malformed.
pub(crate) fn parse_guid(s: &str) -> Option<u128> {
    let s = s
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(s);
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
        } else {
            v = (v << 4) | (c as char).to_digit(16)? as u128;
        }
    }
    Some(v)
}

fn guid_arg(value: &Expr, what: &str) -> syn::Result<u128> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_guid(&s.value()).ok_or_else(|| {
            Error::new(
                s.span(),
                format!(
                    "malformed GUID for `{what}`: expected \"{{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}\" (32 hex digits)"
                ),
            )
        }),
        other => Err(Error::new_spanned(
            other,
            format!("`{what}` takes a string: `{what} = \"{{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}\"`"),
        )),
    }
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let (mut iid, mut async_iid, mut scripts) = (None, None, true);
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            return Err(Error::new_spanned(
                meta,
                "expected `iid = \"{…}\"`, `async_iid = \"{…}\"` or `scripts = false`",
            ));
        };
        let name = nv
            .path
            .get_ident()
            .map(Ident::to_string)
            .unwrap_or_default();
        match name.as_str() {
            "iid" => iid = Some(guid_arg(&nv.value, "iid")?),
            "async_iid" => async_iid = Some(guid_arg(&nv.value, "async_iid")?),
            "scripts" => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Bool(b), ..
                }) => scripts = b.value,
                other => {
                    return Err(Error::new_spanned(
                        other,
                        "`scripts` takes `true` or `false`",
                    ))
                }
            },
            _ => {
                return Err(Error::new_spanned(
                    &nv.path,
                    "unknown argument: expected `iid`, `async_iid` or `scripts`",
                ))
            }
        }
    }
    let missing = |what: &str, whose: &str| {
        Error::new(
            Span::call_site(),
            format!("missing `{what} = \"{{…}}\"`: the IID of the {whose} interface"),
        )
    };
    Ok(Args {
        iid: iid.ok_or_else(|| missing("iid", "synchronous"))?,
        async_iid: async_iid.ok_or_else(|| missing("async_iid", "asynchronous"))?,
        scripts,
    })
}

/// `get_handle` → `GetHandle`.
pub(crate) fn pascal_case(snake: &str) -> String {
    snake
        .trim_start_matches("r#")
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn is_hresult(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "HRESULT" && s.arguments.is_none()),
        Type::Group(g) => is_hresult(&g.elem),
        _ => false,
    }
}

const RETURN_RULE: &str =
    "an interface method returns `HRESULT`, or `(HRESULT, …)` with its out-parameters";

/// The out-parameter types of a return type.
fn out_types(sig: &syn::Signature) -> syn::Result<Vec<Type>> {
    let ty = match &sig.output {
        ReturnType::Default => return Err(Error::new_spanned(sig, RETURN_RULE)),
        ReturnType::Type(_, ty) => &**ty,
    };
    if is_hresult(ty) {
        return Ok(Vec::new());
    }
    match ty {
        Type::Tuple(t) if t.elems.first().is_some_and(is_hresult) => {
            if t.elems.len() == 1 {
                return Err(Error::new_spanned(
                    t,
                    "a method without out-parameters returns `HRESULT` alone, not `(HRESULT,)`",
                ));
            }
            Ok(t.elems.iter().skip(1).cloned().collect())
        }
        other => Err(Error::new_spanned(other, RETURN_RULE)),
    }
}

fn parse_method(item: &TraitItem) -> syn::Result<Method> {
    let TraitItem::Fn(f) = item else {
        return Err(Error::new_spanned(
            item,
            "an interface trait holds methods only (`fn name(&self, …) -> HRESULT;`)",
        ));
    };
    let sig = &f.sig;
    if let Some(body) = &f.default {
        return Err(Error::new_spanned(
            body,
            "an interface method has no body: implement it on the object",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new_spanned(
            &sig.generics,
            "an interface method cannot be generic",
        ));
    }
    if let Some(t) = sig
        .asyncness
        .map(|t| t.span())
        .or(sig.constness.map(|t| t.span()))
        .or(sig.unsafety.map(|t| t.span()))
        .or(sig.abi.as_ref().map(|t| t.span()))
        .or(sig.variadic.as_ref().map(|t| t.span()))
    {
        return Err(Error::new(
            t,
            "an interface method is a plain `fn name(&self, …)`",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r))
            if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(other) => {
            return Err(Error::new_spanned(
                other,
                "an interface method takes `&self` first (COM objects are shared: use interior mutability)",
            ))
        }
        None => {
            return Err(Error::new(
                sig.paren_token.span.join(),
                "an interface method takes `&self` first",
            ))
        }
    }
    let mut ins = Vec::new();
    for arg in inputs {
        let FnArg::Typed(pt) = arg else {
            return Err(Error::new_spanned(arg, "unexpected `self`"));
        };
        let Pat::Ident(pi) = &*pt.pat else {
            return Err(Error::new_spanned(
                &pt.pat,
                "a parameter is a plain name (`cb: u32`): it names the field of the `In` enum",
            ));
        };
        if pi.by_ref.is_some() || pi.subpat.is_some() {
            return Err(Error::new_spanned(
                pi,
                "a parameter is a plain name (`cb: u32`)",
            ));
        }
        ins.push((pi.ident.clone(), (*pt.ty).clone()));
    }
    let out_tys = out_types(sig)?;
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => unreachable!("out_types refuses a method without a return type"),
    };

    let mut com = None;
    let mut out_names: Option<(&Attribute, Vec<Ident>)> = None;
    let mut attrs = Vec::new();
    for attr in &f.attrs {
        if attr.path().is_ident("com_name") {
            let nv = attr.meta.require_name_value()?;
            let s = match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => s.clone(),
                other => {
                    return Err(Error::new_spanned(
                        other,
                        "`com_name` takes a string: `#[com_name = \"Read\"]`",
                    ))
                }
            };
            com = Some(syn::parse_str::<Ident>(&s.value()).map_err(|_| {
                Error::new(
                    s.span(),
                    "`com_name` must be an identifier, such as \"Read\"",
                )
            })?);
        } else if attr.path().is_ident("out") {
            let names = attr.parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated)?;
            out_names = Some((attr, names.into_iter().collect()));
        } else {
            attrs.push(attr.clone());
        }
    }
    let outs = match out_names {
        Some((attr, names)) => {
            if names.len() != out_tys.len() {
                return Err(Error::new_spanned(
                    attr,
                    format!(
                        "`#[out(…)]` names {} out-parameters, the return type has {}",
                        names.len(),
                        out_tys.len()
                    ),
                ));
            }
            names.into_iter().zip(out_tys).collect()
        }
        None => out_tys
            .into_iter()
            .enumerate()
            .map(|(i, t)| (format_ident!("out{}", i), t))
            .collect(),
    };
    let com =
        com.unwrap_or_else(|| Ident::new(&pascal_case(&sig.ident.to_string()), sig.ident.span()));
    Ok(Method {
        ident: sig.ident.clone(),
        com,
        attrs,
        ins,
        outs,
        ret,
    })
}

/// The result type of a synchronous method or `Finish_`: `HRESULT`, or `(HRESULT, outs…)`, as
/// written.
fn result_type(m: &Method) -> TokenStream {
    let ret = &m.ret;
    quote!(#ret)
}

/// The pattern or expression `hr` / `(hr, outs…)`.
fn result_tuple(hr: &Ident, outs: &[TokenStream]) -> TokenStream {
    if outs.is_empty() {
        quote!(#hr)
    } else {
        quote!((#hr, #(#outs),*))
    }
}

fn guid_tokens(v: u128) -> TokenStream {
    let lit = syn::LitInt::new(&format!("0x{v:032X}_u128"), Span::call_site());
    quote!(::comasync::guid::GUID::from_u128(#lit))
}

/// The expansion of `#[interface(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(attr)?;
    let tr: ItemTrait = syn::parse2(item)?;
    if let Some(u) = tr.unsafety {
        return Err(Error::new(u.span(), "an interface trait is not `unsafe`"));
    }
    if !tr.generics.params.is_empty() || tr.generics.where_clause.is_some() {
        return Err(Error::new_spanned(
            &tr.generics,
            "an interface trait cannot be generic",
        ));
    }
    if !tr.supertraits.is_empty() {
        return Err(Error::new_spanned(
            &tr.supertraits,
            "no supertraits: `#[interface]` makes the trait derive from `IUnknown` itself",
        ));
    }
    let methods = tr
        .items
        .iter()
        .map(parse_method)
        .collect::<syn::Result<Vec<_>>>()?;
    if methods.is_empty() {
        return Err(Error::new(
            tr.ident.span(),
            "an interface declares at least one method",
        ));
    }
    for (i, m) in methods.iter().enumerate() {
        if let Some(prev) = methods[..i].iter().find(|p| p.com == m.com) {
            return Err(Error::new(
                m.ident.span(),
                format!(
                    "two methods have the COM name `{}` (`{}` and `{}`): rename one with `#[com_name = \"…\"]`",
                    m.com, prev.ident, m.ident
                ),
            ));
        }
    }

    let vis = &tr.vis;
    let sync = &tr.ident;
    let sync_attrs = &tr.attrs;
    let name = sync.to_string();
    let asynk = format_ident!("Async{}", sync);
    let calls = format_ident!("{}Calls", sync);
    let ins_enum = format_ident!("{}In", sync);
    let outs_enum = format_ident!("{}Out", sync);
    let method_enum = format_ident!("{}Method", sync);
    let async_name = asynk.to_string();
    let sync_iid = guid_tokens(args.iid);
    let async_iid = guid_tokens(args.async_iid);
    let hr = format_ident!("__comasync_hr");

    let com: Vec<&Ident> = methods.iter().map(|m| &m.com).collect();
    let com_str: Vec<String> = com.iter().map(|c| c.to_string()).collect();
    let index: Vec<proc_macro2::Literal> = (0..methods.len())
        .map(proc_macro2::Literal::usize_unsuffixed)
        .collect();
    let n = methods.len();

    let mut sync_fns = Vec::new();
    let mut async_fns = Vec::new();
    let mut in_variants = Vec::new();
    let mut out_variants = Vec::new();
    let mut invoke_arms = Vec::new();
    let mut begin_arms = Vec::new();
    let mut finish_arms = Vec::new();
    let mut call_fns = Vec::new();
    let mut proxy_fns = Vec::new();
    for m in &methods {
        let ident = &m.ident;
        let v = &m.com;
        let begin = format_ident!("begin_{}", ident);
        let finish = format_ident!("finish_{}", ident);
        let attrs = &m.attrs;
        let result = result_type(m);
        let in_names: Vec<&Ident> = m.ins.iter().map(|(n, _)| n).collect();
        let in_tys: Vec<&Type> = m.ins.iter().map(|(_, t)| t).collect();
        let out_names: Vec<&Ident> = m.outs.iter().map(|(n, _)| n).collect();
        let out_tys: Vec<&Type> = m.outs.iter().map(|(_, t)| t).collect();
        let out_toks: Vec<TokenStream> = out_names.iter().map(|n| quote!(#n)).collect();
        let defaults: Vec<TokenStream> = out_tys
            .iter()
            .map(|t| quote!(<#t as ::core::default::Default>::default()))
            .collect();
        let bind = result_tuple(&hr, &out_toks);
        let fail = result_tuple(&hr, &defaults);
        let begin_doc = format!("`Begin_{v}`: starts a call of `{v}` with its in-parameters.");
        let finish_doc = format!(
            "`Finish_{v}`: the return value and out-parameters of `{v}` (what the synchronous method returns)."
        );
        let in_doc = format!("`{v}`'s in-parameters.");
        let out_doc = format!("`{v}`'s out-parameters.");

        sync_fns.push(quote! {
            #(#attrs)*
            fn #ident(&self #(, #in_names: #in_tys)*) -> #result;
        });
        async_fns.push(quote! {
            #[doc = #begin_doc]
            fn #begin(&self #(, #in_names: #in_tys)*) -> ::comasync::hresult::HRESULT;
            #[doc = #finish_doc]
            fn #finish(&self) -> #result;
        });
        in_variants.push(quote! {
            #[doc = #in_doc]
            #v { #(#in_names: #in_tys),* }
        });
        out_variants.push(quote! {
            #[doc = #out_doc]
            #v { #(#out_names: #out_tys),* }
        });
        invoke_arms.push(quote! {
            #ins_enum::#v { #(#in_names),* } => {
                let #bind = __object.#ident(#(#in_names),*);
                (#hr, #outs_enum::#v { #(#out_names),* })
            }
        });
        begin_arms.push(quote! {
            #ins_enum::#v { #(#in_names),* } => __call.#begin(#(#in_names),*),
        });
        finish_arms.push(quote! {
            ::core::option::Option::Some(#method_enum::#v) => {
                let #bind = __call.#finish();
                (#hr, ::core::option::Option::Some(#outs_enum::#v { #(#out_names),* }))
            }
        });
        proxy_fns.push(quote! {
            fn #ident(&self #(, #in_names: #in_tys)*) -> #result {
                #[allow(unreachable_patterns)]
                match self.call(#ins_enum::#v { #(#in_names),* }) {
                    (#hr, ::core::option::Option::Some(#outs_enum::#v { #(#out_names),* })) => #bind,
                    (#hr, _) => #fail,
                }
            }
        });
        call_fns.push(quote! {
            #[inline]
            fn #begin(&self #(, #in_names: #in_tys)*) -> ::comasync::hresult::HRESULT {
                self.begin(#ins_enum::#v { #(#in_names),* })
            }
            #[inline]
            fn #finish(&self) -> #result {
                #[allow(unreachable_patterns)]
                match self.finish(#method_enum::#v as usize) {
                    (#hr, ::core::option::Option::Some(#outs_enum::#v { #(#out_names),* })) => #bind,
                    (#hr, _) => #fail,
                }
            }
        });
    }

    let async_doc = format!(
        "`{async_name}`, the asynchronous twin of `{name}`: `Begin_<m>` takes a method's in-parameters, `Finish_<m>` returns what the synchronous method returns."
    );
    let calls_doc = format!(
        "The call-object glue for `{name}`: names the pair `{name}`/`{async_name}` to comasync's generic call machinery (`AsyncInterface`)."
    );
    let in_doc = format!("The in-parameters of one call of `{name}`: a variant per method.");
    let out_doc = format!("The out-parameters of one call of `{name}`: a variant per method.");
    let method_doc = format!(
        "The methods of `{name}`, in declaration order; a method's discriminant is its index."
    );
    let variant_docs: Vec<String> = com_str.iter().map(|c| format!("`{c}`.")).collect();
    let glue = if args.scripts {
        script_glue(sync, &methods, &calls, &ins_enum, &outs_enum, &method_enum)
    } else {
        TokenStream::new()
    };

    Ok(quote! {
        #(#sync_attrs)*
        #vis trait #sync: ::comasync::unknown::IUnknown {
            #(#sync_fns)*
        }

        impl ::comasync::unknown::Interface for dyn #sync {
            const IID: ::comasync::guid::IID = #sync_iid;
            const NAME: &'static str = #name;
        }

        #[doc = #async_doc]
        #vis trait #asynk: ::comasync::unknown::IUnknown {
            #(#async_fns)*
        }

        impl ::comasync::unknown::Interface for dyn #asynk {
            const IID: ::comasync::guid::IID = #async_iid;
            const NAME: &'static str = #async_name;
        }

        #[doc = #method_doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #vis enum #method_enum {
            #( #[doc = #variant_docs] #com = #index, )*
        }

        impl #method_enum {
            /// Every method, in declaration order.
            pub const ALL: [#method_enum; #n] = [#(#method_enum::#com),*];

            /// The method's index: its position in declaration order.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The method with index `index`, if any.
            pub const fn from_index(index: usize) -> ::core::option::Option<Self> {
                match index {
                    #( #index => ::core::option::Option::Some(#method_enum::#com), )*
                    _ => ::core::option::Option::None,
                }
            }

            /// The method's COM name.
            pub const fn name(self) -> &'static str {
                match self {
                    #( #method_enum::#com => #com_str, )*
                }
            }
        }

        #[doc = #in_doc]
        #[allow(missing_docs)]
        #[derive(Debug)]
        #vis enum #ins_enum {
            #(#in_variants,)*
        }

        impl #ins_enum {
            /// The method this call is of.
            #[inline]
            pub const fn method(&self) -> #method_enum {
                match self {
                    #( #ins_enum::#com { .. } => #method_enum::#com, )*
                }
            }
        }

        #[doc = #out_doc]
        #[allow(missing_docs)]
        #[derive(Debug)]
        #vis enum #outs_enum {
            #(#out_variants,)*
        }

        impl #outs_enum {
            /// The method these out-parameters are of.
            #[inline]
            pub const fn method(&self) -> #method_enum {
                match self {
                    #( #outs_enum::#com { .. } => #method_enum::#com, )*
                }
            }
        }

        #[doc = #calls_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        #vis struct #calls;

        impl ::comasync::call::AsyncInterface for #calls {
            type Sync = dyn #sync;
            type Async = dyn #asynk;
            type In = #ins_enum;
            type Out = #outs_enum;
            const METHODS: &'static [&'static str] = &[#(#com_str),*];

            #[inline]
            fn method_of(__input: &#ins_enum) -> usize {
                __input.method() as usize
            }

            fn invoke_sync(
                __object: &dyn #sync,
                __input: #ins_enum,
            ) -> (::comasync::hresult::HRESULT, #outs_enum) {
                match __input {
                    #(#invoke_arms)*
                }
            }

            fn begin_async(__call: &dyn #asynk, __input: #ins_enum) -> ::comasync::hresult::HRESULT {
                match __input {
                    #(#begin_arms)*
                }
            }

            fn finish_async(
                __call: &dyn #asynk,
                __method: usize,
            ) -> (::comasync::hresult::HRESULT, ::core::option::Option<#outs_enum>) {
                match #method_enum::from_index(__method) {
                    #(#finish_arms)*
                    ::core::option::Option::None => {
                        (::comasync::hresult::E_UNEXPECTED, ::core::option::Option::None)
                    }
                }
            }

            fn upcast(
                __call: ::std::sync::Arc<::comasync::call::CallObject<#calls>>,
            ) -> ::std::sync::Arc<dyn #asynk> {
                __call
            }

            fn upcast_proxy(
                __proxy: ::std::sync::Arc<::comasync::proxy::Proxy<#calls>>,
            ) -> ::std::sync::Arc<dyn #sync> {
                __proxy
            }
        }

        impl #asynk for ::comasync::call::CallObject<#calls> {
            #(#call_fns)*
        }

        impl #sync for ::comasync::proxy::Proxy<#calls> {
            #(#proxy_fns)*
        }

        #glue
    })
}

mod script_glue;
#[cfg(test)]
mod tests;
