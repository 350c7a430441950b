//! The matrix of call security: callers (identity × the object's access policy) ×
//! authentication levels × impersonation levels × where the server impersonates (a
//! synchronous method, `Begin_` before `Signal`, `Begin_` after `Signal`, `Finish_`). Each
//! cell's expected outcome — the call's `HRESULT`, `ImpersonateClient`'s, and the identity the
//! server then runs as — is written out by [`expected`], from the rules (spec 1.10, 3.4), not
//! from the implementation.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/secure.rs"]
mod secure;
#[path = "common/who.rs"]
mod who;

use comasync::hresult::*;
use comasync::security::*;
use common::within;
use secure::{begin_finish, client_as, new_call, unmarshal, Kind, Server, SERVER};
use who::Step::{self, *};

const LEVELS: [u32; 3] = [
    RPC_C_AUTHN_LEVEL_NONE,
    RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
];
const IMPS: [u32; 4] = [
    RPC_C_IMP_LEVEL_ANONYMOUS,
    RPC_C_IMP_LEVEL_IDENTIFY,
    RPC_C_IMP_LEVEL_IMPERSONATE,
    RPC_C_IMP_LEVEL_DELEGATE,
];

/// Where the server code impersonates.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    SyncMethod,
    BeginBeforeSignal,
    BeginAfterSignal,
    Finish,
}

const PHASES: [Phase; 4] = [
    Phase::SyncMethod,
    Phase::BeginBeforeSignal,
    Phase::BeginAfterSignal,
    Phase::Finish,
];

/// A caller: who calls, and whom the object lets in.
#[derive(Clone, Copy, Debug)]
enum Caller {
    /// alice, named by the object's policy.
    AliceNamed,
    /// bob, a member of the group `staff` the policy names.
    BobByGroup,
    /// eve, whom the policy does not name.
    EveRefused,
    /// eve, calling an object open to `Everyone`.
    EveToEveryone,
}

const CALLERS: [Caller; 4] = [
    Caller::AliceNamed,
    Caller::BobByGroup,
    Caller::EveRefused,
    Caller::EveToEveryone,
];

impl Caller {
    fn principal(self) -> Principal {
        match self {
            Caller::AliceNamed => Principal::new("alice"),
            Caller::BobByGroup => Principal::new("bob").with_groups(["staff"]),
            Caller::EveRefused | Caller::EveToEveryone => Principal::new("eve"),
        }
    }

    fn policy(self) -> AccessPolicy {
        match self {
            Caller::EveToEveryone => AccessPolicy::allow([EVERYONE]),
            _ => AccessPolicy::allow(["alice", "staff"]),
        }
    }
}

/// What a cell shows: the call's `HRESULT` (the synchronous call's, or `Begin_`'s), then what
/// the server code observed (`impersonate=…`, `who=…`), empty if it never ran.
type Outcome = (HRESULT, Vec<String>);

/// The rules, cell by cell.
fn expected(caller: Caller, authn: u32, imp: u32, phase: Phase) -> Outcome {
    // The server knows its caller only if the call is authenticated and not anonymous.
    let known = authn != RPC_C_AUTHN_LEVEL_NONE && imp != RPC_C_IMP_LEVEL_ANONYMOUS;
    let allowed = match caller {
        Caller::EveToEveryone => true,
        Caller::EveRefused => false,
        Caller::AliceNamed | Caller::BobByGroup => known,
    };
    if !allowed {
        return (E_ACCESSDENIED, vec![]); // before any server code runs
    }
    let client = caller.principal().name().to_string();
    let (hr, who) = match phase {
        Phase::BeginAfterSignal | Phase::Finish => ("RPC_E_CALL_COMPLETE", SERVER.to_string()),
        Phase::SyncMethod | Phase::BeginBeforeSignal => {
            if authn == RPC_C_AUTHN_LEVEL_NONE {
                ("RPC_E_UNSECURE_CALL", SERVER.to_string())
            } else {
                let who = match imp {
                    RPC_C_IMP_LEVEL_ANONYMOUS => ANONYMOUS_LOGON.to_string(),
                    RPC_C_IMP_LEVEL_IDENTIFY => SERVER.to_string(), // reads, does not act
                    _ => client,
                };
                ("S_OK", who)
            }
        }
    };
    (
        S_OK,
        vec![format!("impersonate={hr}"), format!("who={who}")],
    )
}

/// The steps of a phase: (`Begin_`/method steps, `Finish_` steps).
fn steps(phase: Phase) -> (Vec<Step>, Vec<Step>) {
    match phase {
        Phase::SyncMethod => (vec![Impersonate, Whoami], vec![]),
        Phase::BeginBeforeSignal => (vec![Impersonate, Whoami, Signal], vec![]),
        Phase::BeginAfterSignal => (vec![Signal, Impersonate, Whoami], vec![]),
        Phase::Finish => (vec![], vec![Impersonate, Whoami]),
    }
}

fn tag(caller: Caller, authn: u32, imp: u32, phase: Phase) -> String {
    format!("{caller:?}/{authn}/{imp}/{phase:?}")
}

/// Runs every cell of `caller` against its servers; returns the observed outcomes.
fn observe(caller: Caller) -> Vec<((u32, u32, Phase), Outcome)> {
    let mut sync_server = Server::start(Kind::Sync, Some(caller.policy()));
    let mut async_server = Server::start(Kind::Async, Some(caller.policy()));
    let (s1, s2) = (sync_server.stream(), async_server.stream());
    // CreateCall itself is refused to a refused caller; call objects are made as an allowed
    // principal, then given the caller's identity through pAuthInfo.
    let cells = client_as(caller.principal()).run(move || {
        let sync_proxy = unmarshal(s1);
        let async_proxy = unmarshal(s2);
        let mut out = Vec::new();
        for authn in LEVELS {
            for imp in IMPS {
                let blanket = Blanket::with_levels(authn, imp);
                for phase in PHASES {
                    let t = tag(caller, authn, imp, phase);
                    let (begin, finish) = steps(phase);
                    let hr = if phase == Phase::SyncMethod {
                        assert_eq!(co_set_proxy_blanket(&*sync_proxy, &blanket), S_OK);
                        sync_proxy.run(t, begin, finish).0
                    } else {
                        let b = Blanket {
                            auth_info: Some(caller.principal()),
                            ..Blanket::default()
                        };
                        let creator = Blanket {
                            auth_info: Some(Principal::new("alice")),
                            ..Blanket::default()
                        };
                        let open = matches!(caller, Caller::EveToEveryone);
                        assert_eq!(
                            co_set_proxy_blanket(&*async_proxy, if open { &b } else { &creator }),
                            S_OK
                        );
                        let call = new_call(&async_proxy);
                        let mine = Blanket {
                            auth_info: Some(caller.principal()),
                            ..blanket.clone()
                        };
                        assert_eq!(co_set_proxy_blanket(&*call, &mine), S_OK);
                        begin_finish(&call, &t, begin, finish).0
                    };
                    out.push(((authn, imp, phase), hr));
                }
            }
        }
        out
    });
    cells
        .into_iter()
        .map(|((authn, imp, phase), hr)| {
            let t = tag(caller, authn, imp, phase);
            let log = match phase {
                Phase::SyncMethod => &sync_server.log,
                _ => &async_server.log,
            };
            let seen: Vec<String> = ["method", "begin", "finish"]
                .iter()
                .flat_map(|p| log.of(&t, p))
                .filter(|o| o != "signal")
                .collect();
            ((authn, imp, phase), (hr, seen))
        })
        .collect()
}

#[test]
fn identities_by_authentication_levels_by_impersonation_levels_by_phase() {
    within("security matrix", || {
        let mut wrong = Vec::new();
        let mut cells = 0;
        for caller in CALLERS {
            for ((authn, imp, phase), got) in observe(caller) {
                cells += 1;
                let want = expected(caller, authn, imp, phase);
                if got != want {
                    wrong.push(format!(
                        "{}: expected {want:?}, got {got:?}",
                        tag(caller, authn, imp, phase)
                    ));
                }
            }
        }
        assert_eq!(
            cells,
            CALLERS.len() * LEVELS.len() * IMPS.len() * PHASES.len()
        );
        assert!(
            wrong.is_empty(),
            "{} cells differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    });
}
