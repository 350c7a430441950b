//! [`SecurityModel`]: the security of a script's calls, as far as the scenario check needs
//! it — each thread's identity, each proxy's and call object's blanket, each object's access
//! policy — and the rules that give `WhoAmI`, `QueryBlanket`, `SetBlanket`'s `E_INVALIDARG`,
//! `E_ACCESSDENIED` and `RPC_E_CALL_COMPLETE` (`docs/security.md`).
//!
//! The rules: every thread starts as `SYSTEM`; outside server code a thread runs as its own
//! identity. A new proxy's blanket is `CONNECT`/`IDENTIFY`; `SetBlanket` changes it for the
//! proxy's later calls and call objects (`DEFAULT` levels resolve to `CONNECT` and
//! `IDENTIFY`; `pAuthInfo` with cloaking is `E_INVALIDARG`); a call object starts from its
//! proxy's blanket and keeps its own; `CopyProxy` copies the blanket. A call carries as its
//! client `pAuthInfo` if given, with static cloaking the identity the caller had when the
//! blanket was set, else the caller's own identity; at `NONE` or `ANONYMOUS` no client. An
//! object with an access policy refuses a call below its least level, or whose client is not
//! named (by name or group) unless the policy names `Everyone`. A thread outside any call has
//! no call context. Server code runs as the identity of the thread that marshaled its object;
//! `ImpersonateClient` fails at `NONE` (`RPC_E_UNSECURE_CALL`), else makes the thread run as
//! the client at `IMPERSONATE`/`DELEGATE`, as `ANONYMOUS LOGON` at `ANONYMOUS`, and leaves it
//! the server at `IDENTIFY`; one `RevertToSelf` ends it; the call's end ends it
//! ([`SecurityModel::serve`]). A server call object's `Begin_` may impersonate until its
//! `Signal`; from `Signal` on the call context is complete (`RPC_E_CALL_COMPLETE`), a token
//! taken before stays until `RevertToSelf` through the kept `IServerSecurity` or the end of
//! `Begin_`; `Finish_` runs as the server and cannot impersonate
//! ([`SecurityModel::serve_async`]).
//!
//! Keys are the check's own object numbers (any `usize` the caller chooses).
//!
//! Invariants: a key has at most one blanket; a blanket's levels are resolved (never
//! `DEFAULT`).

use std::collections::HashMap;

use crate::hresult::{
    E_ACCESSDENIED, E_INVALIDARG, HRESULT, RPC_E_CALL_COMPLETE, RPC_E_UNSECURE_CALL, S_OK,
};
use crate::security::{
    ANONYMOUS_LOGON, EOAC_STATIC_CLOAKING, EVERYONE, RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_DEFAULT, RPC_C_AUTHN_LEVEL_NONE, RPC_C_IMP_LEVEL_ANONYMOUS,
    RPC_C_IMP_LEVEL_DEFAULT, RPC_C_IMP_LEVEL_IDENTIFY,
};

/// A principal: a name and its groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrincipal {
    /// The name.
    pub name: String,
    /// The groups.
    pub groups: Vec<String>,
}

impl ModelPrincipal {
    fn named(name: &str) -> ModelPrincipal {
        ModelPrincipal {
            name: name.to_string(),
            groups: Vec::new(),
        }
    }
}

/// A proxy's or call object's blanket, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelBlanket {
    /// `RPC_C_AUTHN_LEVEL_*`.
    pub authn_level: u32,
    /// `RPC_C_IMP_LEVEL_*`.
    pub imp_level: u32,
    /// `pAuthInfo`'s principal name.
    pub auth_info: Option<String>,
    /// With static cloaking: the identity the caller had when the blanket was set.
    pub cloaked: Option<ModelPrincipal>,
}

impl Default for ModelBlanket {
    fn default() -> Self {
        ModelBlanket {
            authn_level: RPC_C_AUTHN_LEVEL_CONNECT,
            imp_level: RPC_C_IMP_LEVEL_IDENTIFY,
            auth_info: None,
            cloaked: None,
        }
    }
}

/// Who may call an object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Policy {
    allowed: Vec<String>,
    min_level: u32,
}

/// One piece of server code of one call, step by step (`Who`'s steps).
struct ServerCode {
    server: String,
    blanket: ModelBlanket,
    client: Option<String>,
    /// Whether the thread impersonates the client.
    impersonating: bool,
    /// Whether the call's context is complete (after `Signal`, in `Finish_`).
    signaled: bool,
    /// Whether an `IServerSecurity` was taken when the call began (`held-*` steps).
    held: bool,
    /// What the object's last `Begin_` saw after its `Signal`.
    last: String,
}

impl ServerCode {
    /// `ImpersonateClient`'s result (and effect).
    fn impersonate(&mut self) -> String {
        if self.signaled {
            return RPC_E_CALL_COMPLETE.name_or_hex();
        }
        if self.blanket.authn_level == RPC_C_AUTHN_LEVEL_NONE {
            return RPC_E_UNSECURE_CALL.name_or_hex();
        }
        self.impersonating = true;
        S_OK.name_or_hex()
    }

    /// What one step observes.
    fn step(&mut self, word: &str) -> String {
        let complete = RPC_E_CALL_COMPLETE.name_or_hex();
        match word {
            "whoami" if self.impersonating => match self.blanket.imp_level {
                RPC_C_IMP_LEVEL_ANONYMOUS => ANONYMOUS_LOGON.to_string(),
                RPC_C_IMP_LEVEL_IDENTIFY => self.server.clone(),
                _ => self.client.clone().unwrap_or_else(|| self.server.clone()),
            },
            "whoami" => self.server.clone(),
            "impersonate" => self.impersonate(),
            "context" | "revert" | "impersonating" | "client" if self.signaled => complete,
            "revert" => {
                self.impersonating = false;
                S_OK.name_or_hex()
            }
            "context" => S_OK.name_or_hex(),
            "impersonating" => self.impersonating.to_string(),
            "client" => self.client.clone().unwrap_or_else(|| "-".into()),
            "held-impersonate" if self.held => self.impersonate(),
            "held-revert" if self.held => {
                self.impersonating = false;
                S_OK.name_or_hex()
            }
            "held-impersonating" if self.held => self.impersonating.to_string(),
            "last" => self.last.clone(),
            _ => "?".into(),
        }
    }
}

/// The security state of a script: identities, blankets, access policies and server identities
/// (the rules: `docs/model.md`, "Security").
#[derive(Clone, Debug, Default)]
pub struct SecurityModel {
    identities: HashMap<String, ModelPrincipal>,
    blankets: HashMap<usize, ModelBlanket>,
    policies: HashMap<usize, Policy>,
    /// Each marshaled object's server identity.
    servers: HashMap<usize, ModelPrincipal>,
    /// What each `WhoAsync`'s last `Begin_` saw after its `Signal`.
    last: HashMap<usize, String>,
}

impl SecurityModel {
    /// A model with every thread `SYSTEM` and no proxies.
    pub fn new() -> Self {
        Self::default()
    }

    /// `SetIdentity`: `actor`'s thread's process identity.
    pub fn set_identity(&mut self, actor: &str, name: &str, groups: &[String]) {
        let who = ModelPrincipal {
            name: name.to_string(),
            groups: groups.to_vec(),
        };
        self.identities.insert(actor.to_string(), who);
    }

    /// The identity `actor`'s thread runs as outside server code.
    pub fn identity(&self, actor: &str) -> ModelPrincipal {
        self.identities
            .get(actor)
            .cloned()
            .unwrap_or_else(|| ModelPrincipal::named(crate::security::DEFAULT_PROCESS_IDENTITY))
    }

    /// `WhoAmI` outside server code: the thread's own identity's name.
    pub fn who_am_i(&self, actor: &str) -> String {
        self.identity(actor).name
    }

    /// A new proxy `key` (`Unmarshal` in another apartment): the default blanket.
    pub fn new_proxy(&mut self, key: usize) {
        self.blankets.insert(key, ModelBlanket::default());
    }

    /// A proxy or call object `to` made from `from` (`CopyProxy`, `CreateCall` on a proxy):
    /// a copy of `from`'s blanket. `false` if `from` has none (not a proxy).
    pub fn copy(&mut self, from: usize, to: usize) -> bool {
        match self.blankets.get(&from).cloned() {
            Some(b) => {
                self.blankets.insert(to, b);
                true
            }
            None => false,
        }
    }

    /// Whether `key` has a blanket (a proxy, or a proxy's call object).
    pub fn has_blanket(&self, key: usize) -> bool {
        self.blankets.contains_key(&key)
    }

    /// `SetBlanket` by `actor` on `key`: `S_OK`, `E_INVALIDARG` (`pAuthInfo` with cloaking),
    /// or `None` if `key` is not followed.
    pub fn set_blanket(
        &mut self,
        actor: &str,
        key: usize,
        authn_level: u32,
        imp_level: u32,
        auth_info: Option<&str>,
        capabilities: u32,
    ) -> Option<HRESULT> {
        if !self.blankets.contains_key(&key) {
            return None;
        }
        if capabilities != 0 && auth_info.is_some() {
            return Some(E_INVALIDARG);
        }
        let b = ModelBlanket {
            authn_level: if authn_level == RPC_C_AUTHN_LEVEL_DEFAULT {
                RPC_C_AUTHN_LEVEL_CONNECT
            } else {
                authn_level
            },
            imp_level: if imp_level == RPC_C_IMP_LEVEL_DEFAULT {
                RPC_C_IMP_LEVEL_IDENTIFY
            } else {
                imp_level
            },
            auth_info: auth_info.map(str::to_string),
            cloaked: (capabilities & EOAC_STATIC_CLOAKING != 0).then(|| self.identity(actor)),
        };
        self.blankets.insert(key, b);
        Some(S_OK)
    }

    /// `QueryBlanket` of `key`: its levels, if followed.
    pub fn query_blanket(&self, key: usize) -> Option<(u32, u32)> {
        self.blankets
            .get(&key)
            .map(|b| (b.authn_level, b.imp_level))
    }

    /// `AccessPolicy` on object `object`.
    pub fn set_policy(&mut self, object: usize, allowed: &[String], min_level: u32) {
        let p = Policy {
            allowed: allowed.to_vec(),
            min_level,
        };
        self.policies.insert(object, p);
    }

    /// The client a call through `key` by `actor` carries (`None`: none the server can
    /// know).
    pub fn client(&self, actor: &str, key: usize) -> Option<ModelPrincipal> {
        let b = self.blankets.get(&key).cloned().unwrap_or_default();
        if b.authn_level == RPC_C_AUTHN_LEVEL_NONE || b.imp_level == RPC_C_IMP_LEVEL_ANONYMOUS {
            return None;
        }
        if let Some(name) = &b.auth_info {
            return Some(ModelPrincipal::named(name));
        }
        Some(b.cloaked.unwrap_or_else(|| self.identity(actor)))
    }

    /// The access check of a call (a synchronous call, `Begin_`, `CreateCall`) by `actor`
    /// through `key` to `object`: `S_OK` or `E_ACCESSDENIED`.
    pub fn access(&self, actor: &str, key: usize, object: usize) -> HRESULT {
        let Some(policy) = self.policies.get(&object) else {
            return S_OK;
        };
        let level = self
            .blankets
            .get(&key)
            .map_or(RPC_C_AUTHN_LEVEL_CONNECT, |b| b.authn_level);
        if level < policy.min_level {
            return E_ACCESSDENIED;
        }
        if policy.allowed.iter().any(|a| a == EVERYONE) {
            return S_OK;
        }
        let let_in = self.client(actor, key).is_some_and(|c| {
            policy
                .allowed
                .iter()
                .any(|a| *a == c.name || c.groups.contains(a))
        });
        if let_in {
            S_OK
        } else {
            E_ACCESSDENIED
        }
    }

    /// `Marshal` of `object` by `actor`: the object's server code runs as `actor`'s identity
    /// now (the server's identity).
    pub fn marshaled(&mut self, object: usize, actor: &str) {
        let who = self.identity(actor);
        self.servers.insert(object, who);
    }

    /// What `Who`'s `Run(steps)` observes when `actor` calls it through `key` (a synchronous
    /// call through a proxy): each step's observation, space-separated, as `crate::script`'s
    /// `Who` server gives it. `None` if the object's server identity is not known.
    pub fn serve(&self, actor: &str, key: usize, object: usize, steps: &str) -> Option<String> {
        let mut code = self.server_code(actor, key, object, false)?;
        let seen: Vec<String> = steps.split_whitespace().map(|w| code.step(w)).collect();
        Some(seen.join(" "))
    }

    /// What `WhoAsync`'s call observes when `actor` begins it through `key` with `steps`
    /// (`Begin_` steps, `|`, `Finish_` steps): what `Finish_Run` returns (what `Begin_` saw up
    /// to its `Signal`, `|`, what `Finish_` saw). What `Begin_` saw after its `Signal` becomes
    /// the object's `last`. `None` if the object's server identity is not known.
    pub fn serve_async(
        &mut self,
        actor: &str,
        key: usize,
        object: usize,
        steps: &str,
    ) -> Option<String> {
        let mut code = self.server_code(actor, key, object, true)?;
        let (begin, finish) = steps.split_once('|').unwrap_or((steps, ""));
        let mut before = Vec::new();
        let mut after: Option<Vec<String>> = None;
        for word in begin.split_whitespace() {
            if word == "signal" && after.is_none() {
                before.push("signal".to_string());
                code.signaled = true;
                after = Some(Vec::new());
                continue;
            }
            let o = code.step(word);
            match &mut after {
                Some(a) => a.push(o),
                None => before.push(o),
            }
        }
        let last = match after {
            Some(a) if !a.is_empty() => a.join(" "),
            _ => "-".to_string(),
        };
        // Finish_ runs after Signal, as the server.
        code.signaled = true;
        code.impersonating = false;
        before.push("|".into());
        before.extend(finish.split_whitespace().map(|w| code.step(w)));
        self.last.insert(object, last);
        Some(before.join(" "))
    }

    /// The server code of a call by `actor` through `key` to `object`.
    fn server_code(
        &self,
        actor: &str,
        key: usize,
        object: usize,
        held: bool,
    ) -> Option<ServerCode> {
        Some(ServerCode {
            server: self.servers.get(&object)?.name.clone(),
            blanket: self.blankets.get(&key).cloned().unwrap_or_default(),
            client: self.client(actor, key).map(|c| c.name),
            impersonating: false,
            signaled: false,
            held,
            last: self
                .last
                .get(&object)
                .cloned()
                .unwrap_or_else(|| "-".into()),
        })
    }

    /// `CoGetCallContext`, `CoImpersonateClient`, `CoRevertToSelf` on a thread outside any
    /// call: `RPC_E_CALL_COMPLETE` (D10).
    pub fn call_context_outside_a_call(&self) -> HRESULT {
        RPC_E_CALL_COMPLETE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE};

    #[test]
    fn a_thread_starts_as_system_and_set_identity_changes_it() {
        let mut m = SecurityModel::new();
        assert_eq!(m.who_am_i("client"), "SYSTEM");
        m.set_identity("client", "alice", &["staff".into()]);
        assert_eq!(m.who_am_i("client"), "alice");
        assert_eq!(m.who_am_i("server"), "SYSTEM");
    }

    #[test]
    fn a_new_proxy_is_connect_identify_and_default_levels_resolve() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        assert_eq!(
            m.query_blanket(1),
            Some((RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_IMP_LEVEL_IDENTIFY))
        );
        let hr = m.set_blanket(
            "c",
            1,
            RPC_C_AUTHN_LEVEL_DEFAULT,
            RPC_C_IMP_LEVEL_DEFAULT,
            None,
            0,
        );
        assert_eq!(hr, Some(S_OK));
        assert_eq!(
            m.query_blanket(1),
            Some((RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_IMP_LEVEL_IDENTIFY))
        );
        assert_eq!(m.set_blanket("c", 2, 2, 2, None, 0), None);
    }

    #[test]
    fn auth_info_with_cloaking_is_invalidarg() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        let hr = m.set_blanket("c", 1, 2, 3, Some("bob"), EOAC_STATIC_CLOAKING);
        assert_eq!(hr, Some(E_INVALIDARG));
    }

    #[test]
    fn a_copy_keeps_its_own_blanket() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        assert!(m.copy(1, 2));
        m.set_blanket(
            "c",
            2,
            RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            None,
            0,
        );
        assert_eq!(
            m.query_blanket(1),
            Some((RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_IMP_LEVEL_IDENTIFY))
        );
        assert_eq!(
            m.query_blanket(2),
            Some((RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE))
        );
        assert!(!m.copy(7, 8));
    }

    #[test]
    fn access_lets_in_names_and_groups_and_refuses_others_and_low_levels() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        m.set_policy(
            9,
            &["alice".into(), "staff".into()],
            RPC_C_AUTHN_LEVEL_CONNECT,
        );
        m.set_identity("a", "alice", &[]);
        m.set_identity("b", "bob", &["staff".into()]);
        m.set_identity("e", "eve", &[]);
        assert_eq!(m.access("a", 1, 9), S_OK);
        assert_eq!(m.access("b", 1, 9), S_OK);
        assert_eq!(m.access("e", 1, 9), E_ACCESSDENIED);
        assert_eq!(m.access("e", 1, 10), S_OK); // no policy
        m.set_blanket(
            "a",
            1,
            RPC_C_AUTHN_LEVEL_NONE,
            RPC_C_IMP_LEVEL_IDENTIFY,
            None,
            0,
        );
        assert_eq!(m.access("a", 1, 9), E_ACCESSDENIED);
    }

    #[test]
    fn an_unknown_client_is_let_in_by_everyone_only() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        m.set_identity("a", "alice", &[]);
        m.set_blanket("a", 1, 2, RPC_C_IMP_LEVEL_ANONYMOUS, None, 0);
        m.set_policy(9, &["alice".into()], RPC_C_AUTHN_LEVEL_NONE);
        assert_eq!(m.access("a", 1, 9), E_ACCESSDENIED);
        m.set_policy(9, &[EVERYONE.into()], RPC_C_AUTHN_LEVEL_NONE);
        assert_eq!(m.access("a", 1, 9), S_OK);
    }

    #[test]
    fn auth_info_and_static_cloaking_choose_the_client() {
        let mut m = SecurityModel::new();
        m.new_proxy(1);
        m.set_identity("a", "alice", &[]);
        m.set_blanket("a", 1, 2, 3, Some("bob"), 0);
        assert_eq!(m.client("a", 1).map(|w| w.name), Some("bob".into()));
        m.set_blanket("a", 1, 2, 3, None, EOAC_STATIC_CLOAKING);
        m.set_identity("a", "carol", &[]);
        assert_eq!(m.client("a", 1).map(|w| w.name), Some("alice".into()));
    }

    #[test]
    fn server_code_runs_as_the_marshaling_thread_and_impersonates_by_level() {
        let mut m = SecurityModel::new();
        m.set_identity("s", "svc", &[]);
        m.set_identity("c", "alice", &[]);
        m.marshaled(9, "s");
        m.new_proxy(1);
        assert_eq!(
            m.serve("c", 1, 9, "whoami impersonate whoami").as_deref(),
            Some("svc S_OK svc")
        );
        m.set_blanket(
            "c",
            1,
            RPC_C_AUTHN_LEVEL_CONNECT,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            None,
            0,
        );
        assert_eq!(
            m.serve(
                "c",
                1,
                9,
                "impersonate impersonate whoami revert impersonating whoami"
            )
            .as_deref(),
            Some("S_OK S_OK alice S_OK false svc")
        );
        m.set_blanket(
            "c",
            1,
            RPC_C_AUTHN_LEVEL_NONE,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            None,
            0,
        );
        assert_eq!(
            m.serve("c", 1, 9, "client impersonate").as_deref(),
            Some("- RPC_E_UNSECURE_CALL")
        );
        assert_eq!(m.serve("c", 1, 8, "whoami"), None);
    }

    #[test]
    fn a_token_taken_before_signal_lasts_until_revert_and_finish_cannot_impersonate() {
        let mut m = SecurityModel::new();
        m.set_identity("s", "svc", &[]);
        m.set_identity("c", "alice", &[]);
        m.marshaled(9, "s");
        m.new_proxy(1);
        m.set_blanket(
            "c",
            1,
            RPC_C_AUTHN_LEVEL_CONNECT,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            None,
            0,
        );
        let out = m.serve_async(
            "c",
            1,
            9,
            "impersonate signal whoami context held-revert whoami | impersonate whoami",
        );
        assert_eq!(
            out.as_deref(),
            Some("S_OK signal | RPC_E_CALL_COMPLETE svc")
        );
        assert_eq!(
            m.serve("c", 1, 9, "last").as_deref(),
            Some("alice RPC_E_CALL_COMPLETE S_OK svc")
        );
    }

    #[test]
    fn outside_a_call_there_is_no_call_context() {
        assert_eq!(
            SecurityModel::new().call_context_outside_a_call(),
            RPC_E_CALL_COMPLETE
        );
    }
}
