//! Unit tests of the `#[interface]` expansion, on token streams: the generated items and
//! every error message.

use super::*;

fn err(attr: TokenStream, item: TokenStream) -> String {
    match expand(attr, item) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn iids() -> TokenStream {
    quote!(
        iid = "{5B0C3E2A-1D4F-4A6B-8C9D-0E1F2A3B4C5D}",
        async_iid = "5B0C3E2B-1D4F-4A6B-8C9D-0E1F2A3B4C5D"
    )
}

#[test]
fn pascal_case_of_snake_names() {
    assert_eq!(pascal_case("read"), "Read");
    assert_eq!(pascal_case("get_handle"), "GetHandle");
    assert_eq!(pascal_case("r#type"), "Type");
    assert_eq!(pascal_case("wait_multiple_2"), "WaitMultiple2");
}

#[test]
fn guids_parse_with_or_without_braces() {
    assert_eq!(
        parse_guid("{00000030-0000-0000-C000-000000000046}"),
        Some(0x00000030_0000_0000_C000_000000000046)
    );
    assert_eq!(
        parse_guid("00000030-0000-0000-c000-000000000046"),
        Some(0x00000030_0000_0000_C000_000000000046)
    );
    assert_eq!(parse_guid("{00000030-0000-0000-C000-00000000004}"), None);
    assert_eq!(parse_guid("{00000030+0000-0000-C000-000000000046}"), None);
    assert_eq!(parse_guid("{0000003G-0000-0000-C000-000000000046}"), None);
}

#[test]
fn a_declaration_expands_to_the_named_items() {
    let out = expand(
        iids(),
        quote! {
            pub trait ICalculator {
                #[out(sum)]
                fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
                #[com_name = "DoAdvise"]
                fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
            }
        },
    )
    .unwrap()
    .to_string();
    for needle in [
        "pub trait ICalculator",
        "pub trait AsyncICalculator",
        "pub struct ICalculatorCalls",
        "pub enum ICalculatorIn",
        "pub enum ICalculatorOut",
        "pub enum ICalculatorMethod",
        "fn begin_add",
        "fn finish_add",
        "fn begin_advise",
        "\"DoAdvise\"",
        "Add { sum : i32 }",
        "0x5B0C3E2A1D4F4A6B8C9D0E1F2A3B4C5D_u128",
    ] {
        assert!(out.contains(needle), "{needle} missing from {out}");
    }
    // Only Debug on the parameter enums: parameters need not be Clone or PartialEq.
    assert!(!out.contains("Clone , PartialEq)] pub enum ICalculatorIn"));
    assert!(out.contains("# [derive (Debug)] pub enum ICalculatorIn"));
}

#[test]
fn missing_iids_are_named() {
    let item = quote!(
        trait I {
            fn f(&self) -> HRESULT;
        }
    );
    assert!(err(quote!(), item.clone()).contains("missing `iid"));
    assert!(
        err(quote!(iid = "{5B0C3E2A-1D4F-4A6B-8C9D-0E1F2A3B4C5D}"), item)
            .contains("missing `async_iid")
    );
}

#[test]
fn scripts_takes_a_bool_and_unknown_arguments_are_named() {
    let item = quote!(
        trait I {
            fn f(&self) -> HRESULT;
        }
    );
    let mut args = iids();
    args.extend(quote!(, scripts = false));
    assert!(expand(args, item.clone()).is_ok());
    let mut args = iids();
    args.extend(quote!(, scripts = "no"));
    assert!(err(args, item.clone()).contains("`scripts` takes `true` or `false`"));
    let mut args = iids();
    args.extend(quote!(, sync_iid = "x"));
    assert!(err(args, item).contains("unknown argument"));
}

#[test]
fn bad_guid_text_is_an_error_at_the_literal() {
    let e = expand(
        quote!(
            iid = "{not-a-guid}",
            async_iid = "{5B0C3E2B-1D4F-4A6B-8C9D-0E1F2A3B4C5D}"
        ),
        quote!(
            trait I {
                fn f(&self) -> HRESULT;
            }
        ),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("malformed GUID for `iid`"));
}

#[test]
fn a_method_without_ref_self_is_refused() {
    for item in [
        quote!(
            trait I {
                fn f(&mut self) -> HRESULT;
            }
        ),
        quote!(
            trait I {
                fn f(self) -> HRESULT;
            }
        ),
        quote!(
            trait I {
                fn f(x: u32) -> HRESULT;
            }
        ),
        quote!(
            trait I {
                fn f() -> HRESULT;
            }
        ),
    ] {
        assert!(err(iids(), item).contains("`&self` first"));
    }
}

#[test]
fn a_return_type_other_than_hresult_is_refused() {
    for item in [
        quote!(
            trait I {
                fn f(&self);
            }
        ),
        quote!(
            trait I {
                fn f(&self) -> u32;
            }
        ),
        quote!(
            trait I {
                fn f(&self) -> (u32, HRESULT);
            }
        ),
    ] {
        assert!(err(iids(), item).contains("returns `HRESULT`"));
    }
    assert!(err(
        iids(),
        quote!(
            trait I {
                fn f(&self) -> (HRESULT,);
            }
        )
    )
    .contains("not `(HRESULT,)`"));
}

#[test]
fn out_names_must_match_the_out_parameters() {
    let e = err(
        iids(),
        quote!(
            trait I {
                #[out(a, b)]
                fn f(&self) -> (HRESULT, u32);
            }
        ),
    );
    assert!(
        e.contains("names 2 out-parameters, the return type has 1"),
        "{e}"
    );
}

#[test]
fn duplicate_com_names_are_refused() {
    let e = err(
        iids(),
        quote!(
            trait I {
                fn read(&self) -> HRESULT;
                #[com_name = "Read"]
                fn read_again(&self) -> HRESULT;
            }
        ),
    );
    assert!(e.contains("two methods have the COM name `Read`"), "{e}");
}

#[test]
fn script_glue_implements_script_interface() {
    let tr: ItemTrait = syn::parse2(quote!(
        trait I {
            #[out(sum)]
            fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
        }
    ))
    .unwrap();
    let methods: Vec<Method> = tr.items.iter().map(|i| parse_method(i).unwrap()).collect();
    let out = script_glue(
        &format_ident!("I"),
        &methods,
        &format_ident!("ICalls"),
        &format_ident!("IIn"),
        &format_ident!("IOut"),
        &format_ident!("IMethod"),
    )
    .to_string();
    assert!(out.contains("impl :: comasync :: script :: ScriptInterface for ICalls"));
    assert!(out.contains("fn parse_in"));
    assert!(out.contains("fn in_values"));
    assert!(out.contains("fn out_values"));
    let full = expand(
        iids(),
        quote!(
            trait I {
                fn f(&self) -> HRESULT;
            }
        ),
    )
    .unwrap()
    .to_string();
    assert!(full.contains("ScriptInterface"), "on by default");
    let off = expand(
        quote!(
            iid = "{00000000-0000-0000-0000-000000000001}",
            async_iid = "{00000000-0000-0000-0000-000000000002}",
            scripts = false
        ),
        quote!(
            trait I {
                fn f(&self) -> HRESULT;
            }
        ),
    )
    .unwrap()
    .to_string();
    assert!(
        !off.contains("ScriptInterface"),
        "scripts = false leaves it out"
    );
}
