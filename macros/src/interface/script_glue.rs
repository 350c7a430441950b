//! The scenario-script glue `#[interface]` emits (unless `scripts = false`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, Type};

use super::Method;

/// The scenario-script glue: `impl ::comasync::script::ScriptInterface for <I>Calls`, which
/// turns script values into a call's in-parameters and its parameters back into values, one
/// parameter at a time through `ScriptParam` (argument errors through the library's
/// `__arity`/`__arg`, so every interface words them alike), and `impl <I> for
/// ScriptServer<<I>Calls>`, the hand-driven script server answering for the synchronous
/// interface itself by delegating each method to its implementation object (one COM identity).
/// Left out with `scripts = false`.
pub(super) fn script_glue(
    sync: &Ident,
    methods: &[Method],
    calls: &Ident,
    ins_enum: &Ident,
    outs_enum: &Ident,
    method_enum: &Ident,
) -> TokenStream {
    let script_interface = quote!(::comasync::script::ScriptInterface);
    let script_param = quote!(::comasync::script::value::ScriptParam);
    let value = quote!(::comasync::script::value::Value);
    let objects = quote!(::comasync::script::value::Objects);
    let server = quote!(::comasync::script::ScriptServer);

    let mut parse_arms = Vec::new();
    let mut in_arms = Vec::new();
    let mut out_arms = Vec::new();
    let mut delegates = Vec::new();
    for m in methods {
        let v = &m.com;
        let com = v.to_string();
        let ident = &m.ident;
        let ret = &m.ret;
        let in_names: Vec<&Ident> = m.ins.iter().map(|(n, _)| n).collect();
        let in_tys: Vec<&Type> = m.ins.iter().map(|(_, t)| t).collect();
        let in_strs: Vec<String> = in_names.iter().map(|n| n.to_string()).collect();
        let ty_strs: Vec<String> = in_tys.iter().map(|t| quote!(#t).to_string()).collect();
        let out_names: Vec<&Ident> = m.outs.iter().map(|(n, _)| n).collect();
        parse_arms.push(quote! {
            ::core::option::Option::Some(#method_enum::#v) => {
                const SIG: &[(&str, &str)] = &[#((#in_strs, #ty_strs)),*];
                ::comasync::script::value::__arity(#com, SIG, __args)?;
                let mut __it = __args.iter();
                ::core::result::Result::Ok(#ins_enum::#v {
                    #( #in_names: ::comasync::script::value::__arg::<#in_tys>(
                        #in_strs, #ty_strs, __it.next(), __objects,
                    )?, )*
                })
            }
        });
        in_arms.push(quote! {
            #ins_enum::#v { #(#in_names),* } => ::std::vec![#(#script_param::to_value(#in_names, __objects)),*],
        });
        out_arms.push(quote! {
            #outs_enum::#v { #(#out_names),* } => ::std::vec![#(#script_param::to_value(#out_names, __objects)),*],
        });
        delegates.push(quote! {
            fn #ident(&self #(, #in_names: #in_tys)*) -> #ret {
                self.object().#ident(#(#in_names),*)
            }
        });
    }
    quote! {
        impl #script_interface for #calls {
            fn parse_in(
                __method: usize,
                __args: &[#value],
                __objects: &dyn #objects,
            ) -> ::core::result::Result<#ins_enum, ::std::string::String> {
                match #method_enum::from_index(__method) {
                    #(#parse_arms)*
                    ::core::option::Option::None => ::core::result::Result::Err(
                        ::std::format!("no method with index {}", __method),
                    ),
                }
            }

            fn in_values(__input: &#ins_enum, __objects: &dyn #objects) -> ::std::vec::Vec<#value> {
                match __input {
                    #(#in_arms)*
                }
            }

            fn out_values(__out: &#outs_enum, __objects: &dyn #objects) -> ::std::vec::Vec<#value> {
                match __out {
                    #(#out_arms)*
                }
            }

            fn server_as_sync(
                __server: ::std::sync::Arc<#server<#calls>>,
            ) -> ::core::option::Option<::std::sync::Arc<dyn #sync>> {
                ::core::option::Option::Some(__server)
            }
        }

        impl #sync for #server<#calls> {
            #(#delegates)*
        }
    }
}
