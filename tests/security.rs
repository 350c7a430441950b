//! Security on calls (spec 1.8, 1.10, 3.3, 3.4, D10): identities, client blankets, the call
//! context, impersonation, the asynchronous rules and access checks. Every rule has a test
//! named after it. The server runs as `server` in an STA of its own; clients run as named
//! principals in STAs of their own.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/secure.rs"]
mod secure;
#[path = "common/who.rs"]
mod who;

use comasync::hresult::*;
use comasync::security::*;
use comasync::unknown::{ComPtr, IUnknown, Interface};
use common::within;
use secure::{alice_on, begin_finish, client, new_call, unmarshal, v, Kind, Server, SERVER};
use who::{IWho, Step::*};

fn impersonating_blanket() -> Blanket {
    Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE)
}

/// `alice` makes one synchronous call (`Run` with `steps`) through a proxy to a synchronous
/// server, after setting the proxy's blanket to `blanket` if one is given: what the server's
/// steps saw.
fn sync_case(blanket: Option<Blanket>, steps: Vec<who::Step>) -> Vec<String> {
    alice_on(Kind::Sync, move |proxy| {
        if let Some(b) = blanket {
            assert_eq!(S_OK, co_set_proxy_blanket(&*proxy, &b));
        }
        proxy.run("t".into(), steps, vec![]).1
    })
    .1
}

// ---- identities ----

#[test]
fn every_thread_starts_as_the_default_process_identity() {
    let name = std::thread::spawn(|| current_identity().name().to_string())
        .join()
        .unwrap();
    assert_eq!(name, DEFAULT_PROCESS_IDENTITY);
}

#[test]
fn the_process_identity_is_per_thread_and_observable() {
    let (a, b) = std::thread::spawn(|| {
        let previous = set_process_identity(Principal::new("alice").with_groups(["staff"]));
        let other = std::thread::spawn(current_identity).join().unwrap();
        (previous, (current_identity(), other))
    })
    .join()
    .unwrap();
    assert_eq!(a.name(), DEFAULT_PROCESS_IDENTITY);
    assert_eq!(b.0, Principal::new("alice").with_groups(["staff"]));
    assert_eq!(
        b.1.name(),
        DEFAULT_PROCESS_IDENTITY,
        "another thread is unchanged"
    );
}

#[test]
fn server_code_runs_as_the_identity_of_the_thread_that_marshaled_the_object() {
    within("server identity", || {
        for kind in [Kind::Sync, Kind::Async] {
            let (server, seen) = alice_on(kind, move |proxy| {
                let (hr, seen) = proxy.run("t".into(), vec![Whoami], vec![]);
                assert_eq!(hr, S_OK);
                seen
            });
            match kind {
                Kind::Sync => assert_eq!(seen, v(&["who=server"])),
                // A synchronous call to a server with a call object runs its Begin_.
                Kind::Async => assert_eq!(server.log.of("t", "begin"), v(&["who=server"])),
            }
        }
    });
}

// ---- client security ----

#[test]
fn a_new_proxy_has_the_default_blanket() {
    within("default blanket", || {
        let mut server = Server::start(Kind::Sync, None);
        let stream = server.stream();
        let b = client("alice").run(move || co_query_proxy_blanket(&*unmarshal(stream)).unwrap());
        assert_eq!(b, Blanket::default());
        assert_eq!(b.authn_svc, RPC_C_AUTHN_WINNT);
        assert_eq!(b.authn_level, RPC_C_AUTHN_LEVEL_CONNECT);
        assert_eq!(b.imp_level, RPC_C_IMP_LEVEL_IDENTIFY);
    });
}

#[test]
fn an_in_process_object_and_its_call_objects_have_no_iclientsecurity() {
    let object = comasync::simple_stream::SimpleStream::create(Vec::new());
    assert_eq!(
        co_set_proxy_blanket(&*object, &Blanket::default()),
        E_NOINTERFACE
    );
    assert_eq!(co_copy_proxy(&*object).unwrap_err().code(), E_NOINTERFACE);
    let factory = object.query::<dyn comasync::call::ICallFactory>().unwrap();
    let call = comasync::call::create_call_as::<dyn comasync::simple_stream::AsyncISimpleStream>(
        &*factory,
        &<dyn comasync::simple_stream::AsyncISimpleStream as Interface>::IID,
    )
    .unwrap();
    assert_eq!(
        call.query::<dyn IClientSecurity>().unwrap_err().code(),
        E_NOINTERFACE
    );
}

#[test]
fn set_blanket_on_a_proxy_affects_every_user_of_that_proxy() {
    within("shared blanket", || {
        let (server, seen) = alice_on(Kind::Async, move |proxy| {
            let other_user = proxy.clone(); // another holder of the same proxy
            let security = proxy.query::<dyn IClientSecurity>().unwrap();
            let unk = proxy.query::<dyn IUnknown>().unwrap();
            assert_eq!(security.set_blanket(&*unk, &impersonating_blanket()), S_OK);
            assert_eq!(
                co_query_proxy_blanket(&*other_user).unwrap(),
                impersonating_blanket()
            );
            // The proxy's synchronous calls carry it...
            let (hr, _) =
                other_user.run("t".into(), vec![QueryBlanket, Impersonate, Whoami], vec![]);
            assert_eq!(hr, S_OK);
            // ...and so do the call objects made afterwards.
            let call = new_call(&other_user);
            co_query_proxy_blanket(&*call).unwrap()
        });
        assert_eq!(
            server.log.of("t", "begin"),
            v(&["blanket=alice/6/3", "impersonate=S_OK", "who=alice"])
        );
        assert_eq!(seen, impersonating_blanket());
    });
}

#[test]
fn a_call_object_starts_from_its_proxys_blanket_and_keeps_its_own() {
    within("call object blanket", || {
        let (server, (call_b, proxy_b)) = alice_on(Kind::Async, move |proxy| {
            assert_eq!(
                co_set_proxy_blanket(&*proxy, &impersonating_blanket()),
                S_OK
            );
            let call = new_call(&proxy);
            assert_eq!(
                co_query_proxy_blanket(&*call).unwrap(),
                impersonating_blanket()
            );
            // Changed on the call object: the proxy keeps its own.
            let b = Blanket::with_levels(RPC_C_AUTHN_LEVEL_CALL, RPC_C_IMP_LEVEL_DELEGATE);
            let security = call.query::<dyn IClientSecurity>().unwrap();
            assert_eq!(
                security.set_blanket(&*call.query::<dyn IUnknown>().unwrap(), &b),
                S_OK
            );
            let (hr, _) = begin_finish(&call, "t", vec![QueryBlanket], vec![]);
            assert_eq!(hr, S_OK);
            (
                co_query_proxy_blanket(&*call).unwrap(),
                co_query_proxy_blanket(&*proxy).unwrap(),
            )
        });
        assert_eq!(call_b.authn_level, RPC_C_AUTHN_LEVEL_CALL);
        assert_eq!(proxy_b, impersonating_blanket());
        assert_eq!(server.log.of("t", "begin"), v(&["blanket=alice/3/4"]));
    });
}

#[test]
fn settings_changed_on_a_call_object_apply_to_calls_begun_afterwards() {
    within("later calls", || {
        let (server, ()) = alice_on(Kind::Async, move |proxy| {
            let call = new_call(&proxy);
            assert_eq!(
                begin_finish(&call, "first", vec![QueryBlanket], vec![]).0,
                S_OK
            );
            assert_eq!(co_set_proxy_blanket(&*call, &impersonating_blanket()), S_OK);
            assert_eq!(
                begin_finish(&call, "second", vec![QueryBlanket], vec![]).0,
                S_OK
            );
        });
        assert_eq!(server.log.of("first", "begin"), v(&["blanket=alice/2/2"]));
        assert_eq!(server.log.of("second", "begin"), v(&["blanket=alice/6/3"]));
    });
}

#[test]
fn a_call_in_progress_keeps_the_blanket_it_started_with() {
    within("call in progress", || {
        let mut server = Server::start(Kind::Async, None);
        let stream = server.stream();
        let alice = client("alice");
        // The server's STA is held: the call waits in its queue while the blankets change.
        let hold = server.sta.hold();
        let changed = comasync::sync::HANDLE::create_event(true, false);
        let (tx, rx) = std::sync::mpsc::channel();
        let c = changed.clone();
        alice.spawn(move || {
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            let steps = vec![QueryBlanket, Impersonate, Whoami];
            assert_eq!(call.begin_run("t".into(), steps, vec![]), S_OK);
            assert_eq!(co_set_proxy_blanket(&*call, &impersonating_blanket()), S_OK);
            assert_eq!(
                co_set_proxy_blanket(&*proxy, &impersonating_blanket()),
                S_OK
            );
            c.set_event();
            tx.send(call.finish_run().0).unwrap();
        });
        let mut i = 0;
        let waited = comasync::sync::co_wait_for_multiple_handles(
            0,
            comasync::sync::INFINITE,
            Some(&[changed]),
            Some(&mut i),
        );
        assert_eq!(waited, S_OK);
        drop(hold);
        assert_eq!(rx.recv().unwrap(), S_OK);
        assert_eq!(
            server.log.of("t", "begin"),
            v(&["blanket=alice/2/2", "impersonate=S_OK", "who=server"]),
            "the call began at CONNECT/IDENTIFY: identify-level, the server acts as itself"
        );
    });
}

#[test]
fn copy_proxy_gives_a_private_copy_of_the_blanket() {
    within("copy proxy", || {
        let (server, ()) = alice_on(Kind::Async, move |proxy| {
            let copy = co_copy_proxy(&*proxy).unwrap();
            assert!(!ComPtr::is_same_object(&copy, &proxy), "a new proxy");
            let copy = copy.query::<dyn IWho>().unwrap();
            assert_eq!(co_set_proxy_blanket(&*copy, &impersonating_blanket()), S_OK);
            assert_eq!(co_query_proxy_blanket(&*proxy).unwrap(), Blanket::default());
            assert_eq!(
                copy.run("c".into(), vec![Impersonate, Whoami], vec![]).0,
                S_OK
            );
            assert_eq!(
                proxy.run("p".into(), vec![Impersonate, Whoami], vec![]).0,
                S_OK
            );
            // A call object's copy is a proxy with the call object's blanket.
            let call = new_call(&proxy);
            let b = Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT, RPC_C_IMP_LEVEL_DELEGATE);
            assert_eq!(co_set_proxy_blanket(&*call, &b), S_OK);
            let from_call = co_copy_proxy(&*call).unwrap();
            assert_eq!(co_query_proxy_blanket(&*from_call).unwrap(), b);
        });
        assert_eq!(
            server.log.of("c", "begin"),
            v(&["impersonate=S_OK", "who=alice"])
        );
        assert_eq!(
            server.log.of("p", "begin"),
            v(&["impersonate=S_OK", "who=server"]),
            "the original kept the identify level"
        );
    });
}

#[test]
fn set_blanket_with_invalid_values_is_e_invalidarg() {
    within("invalid blanket", || {
        let _running = alice_on(Kind::Sync, move |proxy| {
            let with = |change: fn(&mut Blanket)| {
                let mut b = Blanket::default();
                change(&mut b);
                b
            };
            let bad = [
                with(|b| b.authn_level = 7),
                with(|b| b.imp_level = 5),
                with(|b| b.authn_svc = 12345),
                with(|b| b.authz_svc = 7),
                with(|b| b.capabilities = 0x10000),
                with(|b| {
                    b.auth_info = Some(Principal::new("bob"));
                    b.capabilities = EOAC_DYNAMIC_CLOAKING;
                }),
                with(|b| b.capabilities = EOAC_DYNAMIC_CLOAKING | EOAC_STATIC_CLOAKING),
            ];
            for b in bad {
                assert_eq!(co_set_proxy_blanket(&*proxy, &b), E_INVALIDARG, "{b:?}");
            }
            assert_eq!(
                co_query_proxy_blanket(&*proxy).unwrap(),
                Blanket::default(),
                "unchanged"
            );
            // DEFAULT values are COM's choice; RPC_C_AUTHN_NONE means no authentication.
            let d = Blanket {
                authn_svc: RPC_C_AUTHN_DEFAULT,
                authz_svc: RPC_C_AUTHZ_DEFAULT,
                authn_level: RPC_C_AUTHN_LEVEL_DEFAULT,
                imp_level: RPC_C_IMP_LEVEL_DEFAULT,
                capabilities: EOAC_DEFAULT,
                ..Blanket::default()
            };
            assert_eq!(co_set_proxy_blanket(&*proxy, &d), S_OK);
            assert_eq!(co_query_proxy_blanket(&*proxy).unwrap(), Blanket::default());
            let none = Blanket {
                authn_svc: RPC_C_AUTHN_NONE,
                ..impersonating_blanket()
            };
            assert_eq!(co_set_proxy_blanket(&*proxy, &none), S_OK);
            assert_eq!(
                co_query_proxy_blanket(&*proxy).unwrap().authn_level,
                RPC_C_AUTHN_LEVEL_NONE
            );
        });
    });
}

#[test]
fn iclientsecurity_with_another_object_as_pproxy_is_e_invalidarg() {
    within("pProxy", || {
        let _running = alice_on(Kind::Sync, move |proxy| {
            let security = proxy.query::<dyn IClientSecurity>().unwrap();
            let other = comasync::unknown::PlainObject::create();
            assert_eq!(
                security.set_blanket(&*other, &Blanket::default()),
                E_INVALIDARG
            );
            assert_eq!(
                security.query_blanket(&*other).unwrap_err().code(),
                E_INVALIDARG
            );
            assert_eq!(
                security.copy_proxy(&*other).unwrap_err().code(),
                E_INVALIDARG
            );
        });
    });
}

#[test]
fn pauthinfo_names_the_principal_the_calls_are_made_as() {
    within("pAuthInfo", || {
        let (_server, seen) = alice_on(Kind::Sync, move |proxy| {
            let b = Blanket {
                auth_info: Some(Principal::new("bob")),
                ..impersonating_blanket()
            };
            assert_eq!(co_set_proxy_blanket(&*proxy, &b), S_OK);
            proxy
                .run("t".into(), vec![QueryBlanket, Impersonate, Whoami], vec![])
                .1
        });
        assert_eq!(seen, v(&["blanket=bob/6/3", "impersonate=S_OK", "who=bob"]));
    });
}

// ---- call context and impersonation ----

#[test]
fn co_get_call_context_outside_a_call_is_rpc_e_call_complete() {
    let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
    assert_eq!(
        co_get_call_context(&comasync::guid::IID_IServerSecurity, &mut slot),
        RPC_E_CALL_COMPLETE
    );
    assert_eq!(co_impersonate_client(), RPC_E_CALL_COMPLETE);
    assert_eq!(co_revert_to_self(), RPC_E_CALL_COMPLETE);
}

#[test]
fn during_a_call_query_blanket_shows_the_clients_identity_and_level() {
    within("query blanket", || {
        let (_server, seen) = alice_on(Kind::Sync, move |proxy| {
            let (_, a) = proxy.run("a".into(), vec![Context, QueryBlanket], vec![]);
            let b = Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, RPC_C_IMP_LEVEL_DELEGATE);
            assert_eq!(S_OK, co_set_proxy_blanket(&*proxy, &b));
            let (_, b) = proxy.run("b".into(), vec![QueryBlanket], vec![]);
            (a, b)
        });
        assert_eq!(seen.0, v(&["context=S_OK", "blanket=alice/2/2"]));
        assert_eq!(seen.1, v(&["blanket=alice/5/4"]));
    });
}

#[test]
fn impersonation_makes_the_current_identity_the_clients() {
    within("impersonate", || {
        let seen = sync_case(
            Some(impersonating_blanket()),
            vec![
                Whoami,
                Impersonate,
                Whoami,
                IsImpersonating,
                Revert,
                Whoami,
                IsImpersonating,
            ],
        );
        assert_eq!(
            seen,
            v(&[
                "who=server",
                "impersonate=S_OK",
                "who=alice",
                "impersonating=true",
                "revert=S_OK",
                "who=server",
                "impersonating=false"
            ])
        );
    });
}

#[test]
fn impersonation_fails_at_authentication_level_none() {
    within("level none", || {
        let seen = sync_case(
            Some(Blanket::with_levels(
                RPC_C_AUTHN_LEVEL_NONE,
                RPC_C_IMP_LEVEL_IMPERSONATE,
            )),
            vec![QueryBlanket, Impersonate, HeldImpersonate, Whoami],
        );
        assert_eq!(
            seen,
            v(&[
                "blanket=-/1/3",
                "impersonate=RPC_E_UNSECURE_CALL",
                "held-impersonate=RPC_E_UNSECURE_CALL",
                "who=server"
            ])
        );
    });
}

#[test]
fn an_identify_level_blanket_lets_the_server_read_the_identity_but_not_act_as_it() {
    within("identify", || {
        let seen = sync_case(
            Some(Blanket::with_levels(
                RPC_C_AUTHN_LEVEL_CONNECT,
                RPC_C_IMP_LEVEL_IDENTIFY,
            )),
            vec![QueryBlanket, Impersonate, IsImpersonating, Whoami],
        );
        assert_eq!(
            seen,
            v(&[
                "blanket=alice/2/2",
                "impersonate=S_OK",
                "impersonating=true",
                "who=server"
            ])
        );
    });
}

#[test]
fn an_anonymous_level_blanket_hides_the_client() {
    within("anonymous", || {
        let seen = sync_case(
            Some(Blanket::with_levels(
                RPC_C_AUTHN_LEVEL_CONNECT,
                RPC_C_IMP_LEVEL_ANONYMOUS,
            )),
            vec![QueryBlanket, Impersonate, Whoami],
        );
        assert_eq!(
            seen,
            v(&[
                "blanket=-/2/1",
                "impersonate=S_OK",
                &format!("who={ANONYMOUS_LOGON}")
            ])
        );
    });
}

#[test]
fn one_revert_undoes_any_number_of_impersonations() {
    within("one revert", || {
        let seen = sync_case(
            Some(impersonating_blanket()),
            vec![
                Impersonate,
                Impersonate,
                HeldImpersonate,
                Whoami,
                Revert,
                Whoami,
            ],
        );
        assert_eq!(
            seen,
            v(&[
                "impersonate=S_OK",
                "impersonate=S_OK",
                "held-impersonate=S_OK",
                "who=alice",
                "revert=S_OK",
                "who=server"
            ])
        );
    });
}

#[test]
fn com_reverts_at_the_end_of_the_call() {
    within("revert at end", || {
        let (server, seen) = alice_on(Kind::Sync, move |proxy| {
            assert_eq!(
                S_OK,
                co_set_proxy_blanket(&*proxy, &impersonating_blanket())
            );
            let (_, first) = proxy.run("1".into(), vec![Impersonate, Whoami], vec![]);
            let (_, second) = proxy.run("2".into(), vec![Whoami, IsImpersonating], vec![]);
            (first, second)
        });
        assert_eq!(seen.0, v(&["impersonate=S_OK", "who=alice"]));
        assert_eq!(
            seen.1,
            v(&["who=server", "impersonating=false"]),
            "no leak into the next call"
        );
        assert_eq!(
            server.thread_identity(),
            SERVER,
            "nothing stays on the server's thread"
        );
    });
}

#[test]
fn co_get_call_context_for_another_interface_is_e_nointerface() {
    within("other iid", || {
        let (_server, seen) = alice_on(Kind::Sync, move |proxy| {
            proxy.run("t".into(), vec![Context, ContextOther], vec![]).1
        });
        assert_eq!(seen, v(&["context=S_OK", "context-other=E_NOINTERFACE"]));
        let mut slot: Option<ComPtr<dyn IUnknown>> = None;
        // Outside a call the context is gone whatever the IID.
        assert_eq!(
            co_get_call_context(&comasync::guid::IID_ICallFactory, &mut slot),
            RPC_E_CALL_COMPLETE
        );
    });
}

// ---- the asynchronous rules (spec 3.4) ----

fn async_case(steps: Vec<who::Step>, finish: Vec<who::Step>) -> (Server, Vec<String>) {
    let (server, finished) = alice_on(Kind::Async, move |proxy| {
        let call = new_call(&proxy);
        assert_eq!(S_OK, co_set_proxy_blanket(&*call, &impersonating_blanket()));
        let (hr, fin) = begin_finish(&call, "t", steps, finish);
        assert_eq!(hr, S_OK);
        let (hr, seen) = fin.unwrap();
        assert_eq!(hr, S_OK);
        seen
    });
    let begun = server.log.begun.clone().unwrap();
    assert_eq!(
        comasync::sync::co_wait_for_multiple_handles(
            0,
            comasync::sync::INFINITE,
            Some(&[begun]),
            Some(&mut 0)
        ),
        S_OK
    );
    (server, finished)
}

#[test]
fn a_server_call_object_may_impersonate_in_begin_until_signal() {
    within("begin impersonates", || {
        let (server, _) = async_case(
            vec![Context, Impersonate, Whoami, Revert, Whoami, Signal],
            vec![],
        );
        assert_eq!(
            server.log.of("t", "begin"),
            v(&[
                "context=S_OK",
                "impersonate=S_OK",
                "who=alice",
                "revert=S_OK",
                "who=server",
                "signal"
            ])
        );
    });
}

#[test]
fn after_signal_impersonating_and_the_call_context_fail_with_rpc_e_call_complete() {
    within("after signal", || {
        let (server, _) = async_case(
            vec![
                Signal,
                Context,
                Impersonate,
                HeldImpersonate,
                QueryBlanket,
                Revert,
                Whoami,
            ],
            vec![],
        );
        assert_eq!(
            server.log.of("t", "begin"),
            v(&[
                "signal",
                "context=RPC_E_CALL_COMPLETE",
                "impersonate=RPC_E_CALL_COMPLETE",
                "held-impersonate=RPC_E_CALL_COMPLETE",
                "blanket=RPC_E_CALL_COMPLETE",
                "revert=RPC_E_CALL_COMPLETE",
                "who=server"
            ])
        );
    });
}

#[test]
fn a_token_taken_before_signal_stays_until_begin_returns() {
    within("token until Begin_ returns", || {
        let (server, _) = async_case(vec![Impersonate, Signal, Whoami, IsImpersonating], vec![]);
        assert_eq!(
            server.log.of("t", "begin"),
            v(&[
                "impersonate=S_OK",
                "signal",
                "who=alice",
                "impersonating=true"
            ])
        );
        assert_eq!(
            server.thread_identity(),
            SERVER,
            "gone once Begin_ returned"
        );
    });
}

#[test]
fn a_token_taken_before_signal_ends_at_revert_to_self() {
    within("token until RevertToSelf", || {
        let (server, _) = async_case(
            vec![
                Impersonate,
                Signal,
                Revert,
                Whoami,
                HeldRevert,
                Whoami,
                IsImpersonating,
            ],
            vec![],
        );
        assert_eq!(
            server.log.of("t", "begin"),
            v(&[
                "impersonate=S_OK",
                "signal",
                "revert=RPC_E_CALL_COMPLETE",
                "who=alice",
                "held-revert=S_OK",
                "who=server",
                "impersonating=false"
            ])
        );
    });
}

#[test]
fn finish_cannot_impersonate() {
    within("Finish_", || {
        let (_, finished) = async_case(
            vec![],
            vec![
                Context,
                Impersonate,
                HeldImpersonate,
                Whoami,
                IsImpersonating,
            ],
        );
        assert_eq!(
            finished,
            v(&[
                "context=RPC_E_CALL_COMPLETE",
                "impersonate=RPC_E_CALL_COMPLETE",
                "held-impersonate=RPC_E_CALL_COMPLETE",
                "who=server",
                "impersonating=false"
            ])
        );
    });
}

#[test]
fn finish_does_not_run_with_the_token_begin_took() {
    within("Finish_ inside Signal", || {
        // Signal inside Begin_ runs Finish_ on the same thread, while Begin_'s token stays.
        let (server, finished) = async_case(vec![Impersonate, Signal, Whoami], vec![Whoami]);
        assert_eq!(finished, v(&["who=server"]));
        assert_eq!(
            server.log.of("t", "begin"),
            v(&["impersonate=S_OK", "signal", "who=alice"])
        );
    });
}

#[test]
fn a_workers_token_taken_before_signal_ends_with_the_call() {
    within("worker token", || {
        let (server, _) = async_case(
            vec![
                Worker,
                HeldImpersonate,
                Whoami,
                Context,
                Signal,
                Whoami,
                IsImpersonating,
            ],
            vec![],
        );
        assert_eq!(server.log.of("t", "begin"), v(&["worker"]));
        assert_eq!(
            server.log.of("t", "worker"),
            v(&[
                "held-impersonate=S_OK",
                "who=alice",
                "context=RPC_E_CALL_COMPLETE", // a worker is not in the call
                "signal",
                "who=server",
                "impersonating=false"
            ])
        );
        assert_eq!(server.log.of("t", "worker-after"), v(&["who=server"]));
    });
}

#[test]
fn no_identity_leaks_from_one_call_into_the_next() {
    within("no leak", || {
        let (server, ()) = alice_on(Kind::Async, move |proxy| {
            let call = new_call(&proxy);
            assert_eq!(S_OK, co_set_proxy_blanket(&*call, &impersonating_blanket()));
            // Impersonates and never reverts, in Begin_ and in a synchronous call.
            assert_eq!(
                begin_finish(&call, "1", vec![Impersonate, Whoami], vec![]).0,
                S_OK
            );
            assert_eq!(
                S_OK,
                co_set_proxy_blanket(&*proxy, &impersonating_blanket())
            );
            assert_eq!(
                proxy.run("2".into(), vec![Whoami, Impersonate], vec![]).0,
                S_OK
            );
            assert_eq!(
                begin_finish(&call, "3", vec![Whoami, IsImpersonating], vec![]).0,
                S_OK
            );
        });
        assert_eq!(
            server.log.of("1", "begin"),
            v(&["impersonate=S_OK", "who=alice"])
        );
        assert_eq!(
            server.log.of("2", "begin"),
            v(&["who=server", "impersonate=S_OK"])
        );
        assert_eq!(
            server.log.of("3", "begin"),
            v(&["who=server", "impersonating=false"])
        );
        assert_eq!(server.thread_identity(), SERVER);
    });
}

// ---- access checks ----

fn restricted() -> AccessPolicy {
    AccessPolicy::allow(["alice", "staff"])
}

#[test]
fn a_caller_not_allowed_gets_e_accessdenied_from_a_synchronous_call_before_server_code_runs() {
    within("denied sync", || {
        let mut server = Server::start(Kind::Sync, Some(restricted()));
        let stream = server.stream();
        let hr =
            client("eve").run(move || unmarshal(stream).run("t".into(), vec![Whoami], vec![]).0);
        assert_eq!(hr, E_ACCESSDENIED);
        assert!(
            server.log.entries.lock().unwrap().is_empty(),
            "no server code ran"
        );
    });
}

#[test]
fn a_caller_not_allowed_gets_e_accessdenied_from_begin_and_the_call_stays_idle() {
    within("denied Begin_", || {
        let mut server = Server::start(Kind::Async, Some(restricted()));
        let stream = server.stream();
        let allowed = client("alice");
        // CreateCall is allowed for alice; the call object then goes to eve's blanket.
        allowed.run(move || {
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            let b = Blanket {
                auth_info: Some(Principal::new("eve")),
                ..Blanket::default()
            };
            assert_eq!(co_set_proxy_blanket(&*call, &b), S_OK);
            assert_eq!(
                call.begin_run("t".into(), vec![Whoami], vec![]),
                E_ACCESSDENIED
            );
            assert_eq!(
                call.finish_run().0,
                RPC_E_CALL_COMPLETE,
                "idle: no call to finish"
            );
            // Allowed again: the same call object works.
            assert_eq!(co_set_proxy_blanket(&*call, &Blanket::default()), S_OK);
            assert_eq!(begin_finish(&call, "ok", vec![Whoami], vec![]).0, S_OK);
        });
        assert!(server.log.of("t", "begin").is_empty(), "no server code ran");
        assert_eq!(server.log.of("ok", "begin"), v(&["who=server"]));
    });
}

#[test]
fn a_caller_not_allowed_gets_e_accessdenied_from_create_call() {
    within("denied CreateCall", || {
        let mut server = Server::start(Kind::Async, Some(restricted()));
        let stream = server.stream();
        client("eve").run(move || {
            let proxy = unmarshal(stream);
            let factory = proxy.query::<dyn comasync::call::ICallFactory>().unwrap();
            let r = comasync::call::create_call_as::<dyn who::AsyncIWho>(
                &*factory,
                &<dyn who::AsyncIWho as Interface>::IID,
            );
            assert_eq!(r.unwrap_err().code(), E_ACCESSDENIED);
        });
    });
}

#[test]
fn a_call_below_the_minimum_authentication_level_is_refused() {
    within("min level", || {
        let policy = restricted().min_authn_level(RPC_C_AUTHN_LEVEL_PKT_INTEGRITY);
        let mut server = Server::start(Kind::Sync, Some(policy));
        let stream = server.stream();
        client("alice").run(move || {
            let proxy = unmarshal(stream);
            assert_eq!(
                proxy.run("low".into(), vec![Whoami], vec![]).0,
                E_ACCESSDENIED
            );
            let b = Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, RPC_C_IMP_LEVEL_IDENTIFY);
            assert_eq!(co_set_proxy_blanket(&*proxy, &b), S_OK);
            assert_eq!(proxy.run("high".into(), vec![Whoami], vec![]).0, S_OK);
        });
        assert!(server.log.of("low", "method").is_empty());
        assert_eq!(server.log.of("high", "method"), v(&["who=server"]));
    });
}

#[test]
fn members_of_an_allowed_group_are_let_in() {
    within("group", || {
        let mut server = Server::start(Kind::Sync, Some(restricted()));
        let stream = server.stream();
        let bob = secure::client_as(Principal::new("bob").with_groups(["staff"]));
        let hr = bob.run(move || unmarshal(stream).run("t".into(), vec![Whoami], vec![]).0);
        assert_eq!(hr, S_OK);
    });
}

#[test]
fn an_unknown_caller_is_let_in_only_by_everyone() {
    within("everyone", || {
        for (policy, expected) in [
            (restricted(), E_ACCESSDENIED),
            (AccessPolicy::allow([EVERYONE]), S_OK),
        ] {
            let mut server = Server::start(Kind::Sync, Some(policy));
            let stream = server.stream();
            let hrs = client("alice").run(move || {
                let proxy = unmarshal(stream);
                let none =
                    Blanket::with_levels(RPC_C_AUTHN_LEVEL_NONE, RPC_C_IMP_LEVEL_IMPERSONATE);
                assert_eq!(S_OK, co_set_proxy_blanket(&*proxy, &none));
                let a = proxy.run("none".into(), vec![], vec![]).0;
                let anon =
                    Blanket::with_levels(RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_IMP_LEVEL_ANONYMOUS);
                assert_eq!(S_OK, co_set_proxy_blanket(&*proxy, &anon));
                let b = proxy.run("anon".into(), vec![], vec![]).0;
                (a, b)
            });
            assert_eq!(hrs, (expected, expected));
        }
    });
}

// ---- calls made by server code: cloaking, and calls dispatched inside a call ----

/// Two STA servers running as `server-a` and `server-b`; `a` calls out to `b`, and `b` calls
/// back to `a` (each through a proxy unmarshaled in its own apartment).
fn two_servers() -> (Server, Server) {
    let mut a = Server::start(Kind::Sync, None);
    let mut b = Server::start(Kind::Sync, None);
    for (s, name) in [(&a, "server-a"), (&b, "server-b")] {
        let p = Principal::new(name);
        s.sta.run(move || {
            set_process_identity(p);
        });
    }
    // Marshal again now that they run as their names (the stub keeps the marshaling
    // thread's identity).
    let (to_b, to_a) = (b.stream(), a.stream());
    let log_a = a.log.clone();
    a.sta
        .run(move || *log_a.outgoing.lock().unwrap() = Some(unmarshal(to_b)));
    let log_b = b.log.clone();
    b.sta
        .run(move || *log_b.outgoing.lock().unwrap() = Some(unmarshal(to_a)));
    (a, b)
}

#[test]
fn an_impersonating_server_calls_on_as_itself_without_cloaking_and_as_its_client_with_it() {
    within("cloaking", || {
        let (mut a, _b) = two_servers();
        let stream = a.stream();
        let seen = client("alice").run(move || {
            let proxy = unmarshal(stream);
            assert_eq!(
                co_set_proxy_blanket(&*proxy, &impersonating_blanket()),
                S_OK
            );
            let there = vec![QueryBlanket, Impersonate, Whoami];
            proxy
                .run(
                    "t".into(),
                    vec![
                        Impersonate,
                        CallOut(EOAC_NONE, there.clone()),
                        CallOut(EOAC_DYNAMIC_CLOAKING, there.clone()),
                        CallOut(EOAC_STATIC_CLOAKING, there.clone()),
                        Revert,
                        CallOut(EOAC_DYNAMIC_CLOAKING, there),
                    ],
                    vec![],
                )
                .1
        });
        assert_eq!(
            seen,
            v(&[
                "impersonate=S_OK",
                "out=S_OK:blanket=server-a/4/3,impersonate=S_OK,who=server-a",
                "out=S_OK:blanket=alice/4/3,impersonate=S_OK,who=alice",
                "out=S_OK:blanket=alice/4/3,impersonate=S_OK,who=alice",
                "revert=S_OK",
                "out=S_OK:blanket=server-a/4/3,impersonate=S_OK,who=server-a",
            ])
        );
    });
}

#[test]
fn a_call_dispatched_inside_an_impersonating_calls_wait_does_not_see_its_token() {
    within("re-entrant call", || {
        let (mut a, _b) = two_servers();
        let stream = a.stream();
        let seen = client("alice").run(move || {
            let proxy = unmarshal(stream);
            assert_eq!(
                co_set_proxy_blanket(&*proxy, &impersonating_blanket()),
                S_OK
            );
            // a impersonates alice and calls b; b calls back into a, whose STA dispatches the
            // callback while a's call waits; then a goes on.
            let callback = vec![Whoami, IsImpersonating, Impersonate, Whoami];
            let at_b = vec![CallOut(EOAC_NONE, callback)];
            proxy
                .run(
                    "t".into(),
                    vec![
                        Impersonate,
                        CallOut(EOAC_NONE, at_b),
                        Whoami,
                        IsImpersonating,
                    ],
                    vec![],
                )
                .1
        });
        assert_eq!(
            seen,
            v(&[
                "impersonate=S_OK",
                // The callback came from b (running as server-b): it ran as server-a, not
                // impersonating, and impersonated its own client, server-b.
                "out=S_OK:out=S_OK:who=server-a,impersonating=false,impersonate=S_OK,who=server-b",
                "who=alice",
                "impersonating=true"
            ]),
            "a's own token is back after the callback"
        );
        assert_eq!(a.thread_identity(), "server-a");
    });
}

#[test]
fn the_call_context_answers_iunknown_and_names_the_server() {
    within("context IUnknown", || {
        let (_server, seen) = alice_on(Kind::Sync, move |proxy| {
            let (_, a) = proxy.run("a".into(), vec![ContextUnknown, ServerName], vec![]);
            let named = Blanket {
                server_principal_name: Some("host/server".into()),
                ..Blanket::default()
            };
            assert_eq!(co_set_proxy_blanket(&*proxy, &named), S_OK);
            let (_, b) = proxy.run("b".into(), vec![ServerName], vec![]);
            (a, b)
        });
        assert_eq!(seen.0, v(&["context-unknown=S_OK", "spn=server"]));
        assert_eq!(seen.1, v(&["spn=host/server"]));
    });
}

#[test]
fn a_synchronous_calls_context_answers_icancelmethodcalls_and_an_asynchronous_one_does_not() {
    within("context ICancelMethodCalls", || {
        let mut sync_server = Server::start(Kind::Sync, None);
        let mut async_server = Server::start(Kind::Async, None);
        let (s1, s2) = (sync_server.stream(), async_server.stream());
        let seen = client("alice").run(move || {
            let sync_proxy = unmarshal(s1);
            let (_, a) = sync_proxy.run("a".into(), vec![ContextCancel], vec![]);
            let call = new_call(&unmarshal(s2));
            assert_eq!(
                begin_finish(&call, "b", vec![ContextCancel], vec![]).0,
                S_OK
            );
            a
        });
        assert_eq!(seen, v(&["context-cancel=S_OK/RPC_S_CALLPENDING"]));
        assert_eq!(
            async_server.log.of("b", "begin"),
            v(&["context-cancel=E_NOINTERFACE"])
        );
        let mut slot: Option<ComPtr<dyn comasync::call::ICancelMethodCalls>> = None;
        assert_eq!(
            co_get_call_context(&comasync::guid::IID_ICancelMethodCalls, &mut slot),
            RPC_E_CALL_COMPLETE,
            "outside a call"
        );
    });
}

#[test]
fn static_cloaking_keeps_the_identity_of_when_the_blanket_was_set_and_dynamic_follows_the_caller() {
    within("static vs dynamic", || {
        let (mut a, _b) = two_servers();
        let stream = a.stream();
        let seen = client("alice").run(move || {
            let proxy = unmarshal(stream);
            assert_eq!(
                co_set_proxy_blanket(&*proxy, &impersonating_blanket()),
                S_OK
            );
            let mut out = Vec::new();
            for flags in [EOAC_STATIC_CLOAKING, EOAC_DYNAMIC_CLOAKING] {
                // Set while impersonating alice, then reverted before the second call.
                let steps = vec![
                    Impersonate,
                    CallOut(flags, vec![QueryBlanket]),
                    Revert,
                    CallOutAgain(vec![QueryBlanket]),
                ];
                out.push(proxy.run(format!("{flags}"), steps, vec![]).1);
            }
            out
        });
        assert_eq!(
            seen[0],
            v(&[
                "impersonate=S_OK",
                "out=S_OK:blanket=alice/4/3",
                "revert=S_OK",
                "out=S_OK:blanket=alice/4/3"
            ]),
            "static: the identity captured by SetBlanket"
        );
        assert_eq!(
            seen[1],
            v(&[
                "impersonate=S_OK",
                "out=S_OK:blanket=alice/4/3",
                "revert=S_OK",
                "out=S_OK:blanket=server-a/4/3"
            ]),
            "dynamic: the caller's identity at each call"
        );
    });
}

// ---- contexts of successive calls ----

/// Keeps the call context of every call it serves; each call reports what the context kept
/// from the call before says now, and whether its own context works.
#[comasync::implement(comasync::simple_stream::ISimpleStream)]
#[derive(Default)]
struct ContextKeeper {
    kept: std::sync::Mutex<Vec<ComPtr<dyn IServerSecurity>>>,
}

impl comasync::simple_stream::ISimpleStream for ContextKeeper_Impl {
    /// `[earlier, own]`: the `QueryBlanket` of the context kept from the previous call (0
    /// none kept, 1 `RPC_E_CALL_COMPLETE`, 2 anything else) and of this call's own (1 if it
    /// answers).
    fn read(&self, _cb: u32) -> (HRESULT, Vec<u8>) {
        let own = server_security_context().expect("a call has a context");
        let mut kept = self.kept.lock().unwrap();
        let earlier = match kept.last().map(|k| k.query_blanket()) {
            None => 0,
            Some(Err(e)) if e.code() == RPC_E_CALL_COMPLETE => 1,
            Some(_) => 2,
        };
        let answers = u8::from(own.query_blanket().is_ok());
        kept.push(own);
        (S_OK, vec![earlier, answers])
    }

    fn write(&self, _data: Vec<u8>) -> (HRESULT, u32) {
        (E_NOTIMPL, 0)
    }
}

/// The stub begins a call's context in the memory of the previous call's when nothing holds
/// that any more (no allocation per call); a context the server kept stays the old call's:
/// complete, while the next call has a working context of its own.
#[test]
fn a_context_kept_from_an_earlier_call_stays_complete_while_the_next_runs() {
    use comasync::apartment::*;
    use comasync::marshal::*;
    use comasync::simple_stream::{ISimpleStream, ISimpleStreamCalls};
    within("three calls, each keeping its context", || {
        let iid = <dyn ISimpleStream as Interface>::IID;
        assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
        let object = ContextKeeper::default().into_object();
        let stream =
            co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)
                .unwrap();
        let seen = std::thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
            let proxy =
                co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid).unwrap();
            let seen: Vec<_> = (0..3).map(|_| proxy.read(1)).collect();
            drop(proxy);
            co_uninitialize();
            seen
        })
        .join()
        .unwrap();
        let ok = |v: Vec<u8>| (S_OK, v);
        assert_eq!(seen, vec![ok(vec![0, 1]), ok(vec![1, 1]), ok(vec![1, 1])]);
        drop(object);
        co_uninitialize();
    });
}

/// A call object's call to an MTA object waits in the call object for an MTA worker; the
/// blanket it carries is stamped by its `Begin_`, so changing the blanket right after `Begin_`
/// (while the call may still wait for the worker) changes only later calls, and a call the
/// client cancelled and followed with another never runs with the later call's blanket.
/// Every timing is allowed: the server sees each call it runs with its own `Begin_`'s blanket.
#[test]
fn a_call_to_an_mta_object_carries_the_blanket_of_its_begin() {
    use comasync::apartment::*;
    use comasync::marshal::*;
    use who::{IWhoCalls, WhoAsync};
    within("calls to an MTA object while the blanket changes", || {
        // The MTA server runs as `server`, on a thread that keeps the MTA until the end.
        let (stream_tx, stream_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let mta = std::thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
            set_process_identity(Principal::new(SERVER));
            let (object, log) = WhoAsync::create(Principal::new(SERVER));
            let stream =
                co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&secure::iid(), &*object)
                    .unwrap();
            stream_tx.send((stream, log)).unwrap();
            let _ = done_rx.recv();
            drop(object);
            co_uninitialize();
        });
        let (stream, log) = stream_rx.recv().unwrap();
        let expected = client("alice").run(move || {
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            let blankets = [Blanket::default(), impersonating_blanket()];
            let mut expected = Vec::new();
            for i in 0..300 {
                let tag = format!("call{i}");
                let now = i % 2;
                assert_eq!(co_set_proxy_blanket(&*call, &blankets[now]), S_OK);
                assert_eq!(
                    call.begin_run(tag.clone(), vec![QueryBlanket], vec![]),
                    S_OK
                );
                // The next blanket, set while this call may still wait for the worker.
                assert_eq!(co_set_proxy_blanket(&*call, &blankets[1 - now]), S_OK);
                if i % 3 == 0 {
                    // Cancelled at once: the call may or may not reach the server.
                    let _ = comasync::call::ICancelMethodCalls::cancel(
                        &*call
                            .query::<dyn comasync::call::ICancelMethodCalls>()
                            .unwrap(),
                        0,
                    );
                }
                let _ = call.finish_run();
                expected.push((tag, ["blanket=alice/2/2", "blanket=alice/6/3"][now]));
            }
            expected
        });
        let mut ran = 0;
        for (tag, blanket) in &expected {
            let seen = log.of(tag, "begin");
            assert!(
                seen.is_empty() || seen == v(&[blanket]),
                "{tag} began with {blanket:?}, the server saw {seen:?}"
            );
            ran += usize::from(!seen.is_empty());
        }
        // Two thirds of the calls are never cancelled: those all reach the server.
        assert!(ran >= 200, "only {ran} of 300 calls reached the server");
        done_tx.send(()).unwrap();
        mta.join().unwrap();
    });
}
