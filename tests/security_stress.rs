//! Stress: several clients, each running as its own identity, call the same objects in the
//! MTA at once, so their calls interleave on the MTA's shared worker pool (and on the server's
//! own workers). Every step of server code records the identity it observed; the test checks
//! that none ever observed the wrong one — neither another client's nor a leftover token — and
//! that no server code ever ran for a client the objects refuse, whose calls interleave too.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/secure.rs"]
mod secure;
#[path = "common/who.rs"]
mod who;

use std::sync::Arc;

use comasync::apartment::{co_initialize_ex, co_uninitialize, COINIT_MULTITHREADED};
use comasync::hresult::S_OK;
use comasync::marshal::co_marshal_inter_thread_interface_in_stream;
use comasync::security::*;
use common::within;
use secure::{begin_finish, client, iid, new_call, unmarshal, SERVER};
use who::Step::{self, *};
use who::{IWhoCalls, WhoAsync, WhoLog, WhoSync};

const CLIENTS: usize = 6;
const ROUNDS: usize = 40;

/// One call's steps and the observations they must give for a client named `me` that
/// impersonates (`acts`: its blanket lets the server act as it).
fn plan(
    round: usize,
    me: &str,
    acts: bool,
) -> (&'static str, Vec<Step>, Vec<(&'static str, String)>) {
    let as_client = if acts { me } else { SERVER };
    let who = |n: &str| format!("who={n}");
    match round % 4 {
        // A synchronous method: impersonate, revert, impersonate again and leave it to COM.
        0 => (
            "method",
            vec![
                Whoami,
                Impersonate,
                Whoami,
                Revert,
                Whoami,
                Impersonate,
                Whoami,
            ],
            vec![
                ("method", who(SERVER)),
                ("method", "impersonate=S_OK".into()),
                ("method", who(as_client)),
                ("method", "revert=S_OK".into()),
                ("method", who(SERVER)),
                ("method", "impersonate=S_OK".into()),
                ("method", who(as_client)),
            ],
        ),
        // Begin_ impersonates, signals while impersonating, keeps the token until it returns.
        1 => (
            "async",
            vec![Whoami, Impersonate, Whoami, Signal, Whoami, Impersonate],
            vec![
                ("begin", who(SERVER)),
                ("begin", "impersonate=S_OK".into()),
                ("begin", who(as_client)),
                ("begin", "signal".into()),
                ("begin", who(as_client)),
                ("begin", "impersonate=RPC_E_CALL_COMPLETE".into()),
                ("finish", who(SERVER)),
            ],
        ),
        // A server worker impersonates through the IServerSecurity kept from Begin_.
        2 => (
            "async",
            vec![Whoami, Worker, HeldImpersonate, Whoami, Signal, Whoami],
            vec![
                ("begin", who(SERVER)),
                ("begin", "worker".into()),
                ("worker", "held-impersonate=S_OK".into()),
                ("worker", who(as_client)),
                ("worker", "signal".into()),
                ("worker", who(SERVER)),
                ("worker-after", who(SERVER)),
                ("finish", who(SERVER)),
            ],
        ),
        // A synchronous call served by the server's call object.
        _ => (
            "sync-on-async",
            vec![Whoami, Impersonate, Whoami],
            vec![
                ("begin", who(SERVER)),
                ("begin", "impersonate=S_OK".into()),
                ("begin", who(as_client)),
                ("finish", who(SERVER)),
            ],
        ),
    }
}

#[test]
fn calls_from_several_identities_on_a_shared_pool_never_observe_the_wrong_identity() {
    within("security stress", || {
        assert!(co_initialize_ex(None, COINIT_MULTITHREADED).succeeded());
        set_process_identity(Principal::new(SERVER));
        let (sync_object, sync_log) = WhoSync::create();
        let (async_object, async_log) = WhoAsync::create(Principal::new(SERVER));
        let names: Vec<String> = (0..CLIENTS).map(|i| format!("user{i}")).collect();
        // Everyone but the intruder is let in.
        set_access_policy(&*sync_object, AccessPolicy::allow(names.clone()));
        set_access_policy(&*async_object, AccessPolicy::allow(names.clone()));
        let intruder = intrude(&sync_object, &async_object);
        let mut clients = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let s1 =
                co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&iid(), &*sync_object)
                    .unwrap();
            let s2 =
                co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&iid(), &*async_object)
                    .unwrap();
            let sta = client(name);
            let me = name.clone();
            // Client 0 lets the server identify it only: the server must go on acting as
            // itself while the others' impersonations interleave.
            let acts = i != 0;
            let (tx, rx) = std::sync::mpsc::channel();
            sta.spawn(move || {
                let sync_proxy = unmarshal(s1);
                let async_proxy = unmarshal(s2);
                let imp = if acts {
                    RPC_C_IMP_LEVEL_IMPERSONATE
                } else {
                    RPC_C_IMP_LEVEL_IDENTIFY
                };
                let blanket = Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT, imp);
                assert_eq!(co_set_proxy_blanket(&*sync_proxy, &blanket), S_OK);
                assert_eq!(co_set_proxy_blanket(&*async_proxy, &blanket), S_OK);
                let call = new_call(&async_proxy);
                for round in 0..ROUNDS {
                    let tag = format!("{me}#{round}");
                    let (kind, steps, _) = plan(round, &me, acts);
                    let hr = match kind {
                        "method" => sync_proxy.run(tag, steps, vec![Whoami]).0,
                        "async" => {
                            let (hr, fin) = begin_finish(&call, &tag, steps, vec![Whoami]);
                            assert_eq!(hr, S_OK);
                            fin.unwrap().0
                        }
                        _ => async_proxy.run(tag, steps, vec![Whoami]).0,
                    };
                    assert_eq!(hr, S_OK);
                }
                tx.send(()).unwrap();
            });
            clients.push((sta, rx));
        }
        for (sta, rx) in clients {
            rx.recv().expect("a client failed");
            sta.stop();
        }
        let (sta, rx) = intruder;
        rx.recv().expect("the intruder failed");
        sta.stop();
        // The worker's last record comes after its Signal: wait for every worker to finish.
        let workers = names.len() * ROUNDS.div_ceil(4);
        let begun = async_log.begun.clone().unwrap();
        let mut waited = 0;
        while async_log.of_phase("worker-after").len() < workers {
            let _ = comasync::sync::co_wait_for_multiple_handles(
                0,
                comasync::sync::INFINITE,
                Some(std::slice::from_ref(&begun)),
                Some(&mut waited),
            );
        }
        check(&names, &sync_log, &async_log);
        for log in [&sync_log, &async_log] {
            let entries = log.entries.lock().unwrap();
            assert!(
                entries.iter().all(|(t, _, _)| !t.starts_with("mallory")),
                "no server code ran for a refused caller"
            );
        }
        drop((sync_object, async_object));
        co_uninitialize();
    });
}

/// A client the objects refuse, calling them as the others do, from an STA of its own: every
/// call, `Begin_` and `CreateCall` is `E_ACCESSDENIED`.
fn intrude(
    sync_object: &comasync::ComPtr<dyn who::IWho>,
    async_object: &comasync::ComPtr<dyn who::IWho>,
) -> (apartments::Sta, std::sync::mpsc::Receiver<()>) {
    let s1 =
        co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&iid(), &**sync_object).unwrap();
    let s2 =
        co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&iid(), &**async_object).unwrap();
    let sta = client("mallory");
    let (tx, rx) = std::sync::mpsc::channel();
    sta.spawn(move || {
        let sync_proxy = unmarshal(s1);
        let async_proxy = unmarshal(s2);
        let factory = async_proxy
            .query::<dyn comasync::call::ICallFactory>()
            .unwrap();
        for round in 0..ROUNDS {
            let tag = format!("mallory#{round}");
            let steps = vec![Whoami, Impersonate, Whoami];
            let denied = comasync::hresult::E_ACCESSDENIED;
            assert_eq!(sync_proxy.run(tag.clone(), steps.clone(), vec![]).0, denied);
            assert_eq!(async_proxy.run(tag.clone(), steps, vec![]).0, denied);
            let call = comasync::call::create_call_as::<dyn who::AsyncIWho>(
                &*factory,
                &<dyn who::AsyncIWho as comasync::unknown::Interface>::IID,
            );
            assert_eq!(call.unwrap_err().code(), denied);
        }
        tx.send(()).unwrap();
    });
    (sta, rx)
}

/// Every call's observations are exactly its plan's; every `who=` is the server or the
/// call's own client.
fn check(names: &[String], sync_log: &Arc<WhoLog>, async_log: &Arc<WhoLog>) {
    let mut observed = 0;
    for (i, me) in names.iter().enumerate() {
        for round in 0..ROUNDS {
            let tag = format!("{me}#{round}");
            let (kind, _, want) = plan(round, me, i != 0);
            let log = if kind == "method" {
                sync_log
            } else {
                async_log
            };
            let got: Vec<(&'static str, String)> = log
                .entries
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _, _)| *t == tag)
                .map(|(_, p, o)| (*p, o.clone()))
                .collect();
            let mut got_sorted = got.clone();
            let mut want_sorted = want.clone();
            // The worker and Finish_ run on different threads: compare per phase, in order.
            got_sorted.sort_by_key(|(p, _)| *p);
            want_sorted.sort_by_key(|(p, _)| *p);
            assert_eq!(got_sorted, want_sorted, "call {tag}");
            for (_, o) in &got {
                if let Some(who) = o.strip_prefix("who=") {
                    assert!(who == SERVER || who == me, "{tag} observed {who}");
                }
            }
            observed += got.len();
        }
    }
    assert!(observed >= names.len() * ROUNDS * 4);
}
