//! One statement's operation: the words after the actor and `NAME =` ([`parse_op`]), with
//! the argument reader ([`Args`]) that names what it expected when a word does not fit.

use super::super::lex::{cowait_flags, is_ident, number, Tok};
use super::super::registry::{Registry, Serving};
use super::super::value::Value;
use super::{Iface, Op, SecurityOp, ServerKind, SyntaxError, AUTHN_LEVELS, IMP_LEVELS};
use crate::call::RPC_C_CANCEL_INFINITE_TIMEOUT;
use crate::hresult::parse_hresult;
use crate::sync::INFINITE;

/// The operation names, for "expected an operation" messages.
const OPS: &str = "SimpleStream, SimpleStreamSyncOnly, Manual, Pool, ManualResetEvent, StdEvent, \
SynchronizeContainer, CoCreateInstance, Outer, QueryInterface, AddRef, Release, CreateCall, \
Begin_<Method>, Finish_<Method>, Wait, Signal, Reset, GetHandle, Signals, Resets, Cancel, \
TestCancel, CoEnableCallCancellation, CoDisableCallCancellation, AddSynchronize, WaitMultiple, \
CoWaitForMultipleHandles, Complete, Fail, ServerTestCancel, CoInitializeEx, CoUninitialize, \
Marshal, Unmarshal, Pump, Call, CoCancelCall, CoTestCancel, CoGetCancelObject, SetIdentity, \
WhoAmI, SetBlanket, QueryBlanket, CopyProxy, AccessPolicy, CoGetCallContext, CoImpersonateClient, \
CoRevertToSelf";

/// The system classes by name, for `CoCreateInstance`.
const CLASSES: [(&str, crate::guid::CLSID); 3] = [
    (
        "CLSID_ManualResetEvent",
        crate::guid::CLSID_ManualResetEvent,
    ),
    ("CLSID_StdEvent", crate::guid::CLSID_StdEvent),
    (
        "CLSID_SynchronizeContainer",
        crate::guid::CLSID_SynchronizeContainer,
    ),
];

struct Args<'a> {
    registry: &'a Registry,
    op: &'a str,
    toks: &'a [Tok],
    pos: usize,
    line: usize,
}

impl<'a> Args<'a> {
    fn err(&self, what: &str) -> SyntaxError {
        let found = match self.toks.get(self.pos) {
            Some(t) => format!("`{}`", t.show()),
            None => "the end of the statement".into(),
        };
        SyntaxError {
            line: self.line,
            message: format!("{}: expected {what}, found {found}", self.op),
        }
    }

    fn word(&mut self, what: &str) -> Result<&'a str, SyntaxError> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.err(what)),
        }
    }

    fn var(&mut self, what: &str) -> Result<String, SyntaxError> {
        let w = self.word(what)?;
        if !is_ident(w) {
            self.pos -= 1;
            return Err(self.err(what));
        }
        Ok(w.to_string())
    }

    fn num(&mut self, what: &str, infinite: Option<u32>) -> Result<u32, SyntaxError> {
        let w = self.word(what)?;
        number(w, infinite).ok_or_else(|| {
            self.pos -= 1;
            self.err(what)
        })
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>, SyntaxError> {
        match self.toks.get(self.pos) {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            _ => Err(self.err(what)),
        }
    }

    fn iface(&mut self, what: &str) -> Result<Iface, SyntaxError> {
        let w = self.word(what)?;
        match self.registry.resolve(w) {
            Some((name, iid)) => Ok(Iface { name, iid }),
            None => {
                self.pos -= 1;
                let names = self.registry.interface_names().join(", ");
                Err(self.err(&format!("{what} (one of {names}, or an IID in braces)")))
            }
        }
    }

    /// A class: one of [`CLASSES`] or a CLSID in braces.
    fn clsid(&mut self, what: &str) -> Result<Iface, SyntaxError> {
        let w = self.word(what)?;
        if let Some((name, clsid)) = CLASSES.iter().find(|(n, _)| *n == w) {
            return Ok(Iface {
                name: name.to_string(),
                iid: *clsid,
            });
        }
        match w
            .starts_with('{')
            .then(|| crate::guid::GUID::parse(w))
            .flatten()
        {
            Some(clsid) => {
                let name = CLASSES
                    .iter()
                    .find(|(_, c)| *c == clsid)
                    .map_or_else(|| clsid.to_string(), |(n, _)| n.to_string());
                Ok(Iface { name, iid: clsid })
            }
            None => {
                self.pos -= 1;
                let names: Vec<&str> = CLASSES.iter().map(|(n, _)| *n).collect();
                Err(self.err(&format!(
                    "{what} ({}, or a CLSID in braces)",
                    names.join(", ")
                )))
            }
        }
    }

    /// `COWAIT_*` flags: a number or names joined with `|`.
    fn flags(&mut self) -> Result<u32, SyntaxError> {
        const FLAGS: &str = "the flags (0, COWAIT_WAITALL, ... joined with |)";
        let w = self.word(FLAGS)?;
        cowait_flags(w).ok_or_else(|| {
            self.pos -= 1;
            self.err(FLAGS)
        })
    }

    /// `[flags] timeout`, as many tokens as are left before `end` (flags default to 0).
    fn flags_timeout(&mut self, end: usize) -> Result<(u32, u32), SyntaxError> {
        let flags = if end.saturating_sub(self.pos) >= 2 {
            self.flags()?
        } else {
            0
        };
        Ok((flags, self.num(TIMEOUT, Some(INFINITE))?))
    }

    /// A level from `table` by its script name (`CONNECT`) or its SDK name
    /// (`RPC_C_AUTHN_LEVEL_CONNECT`, with `prefix`).
    fn level(
        &mut self,
        table: &[(&str, u32)],
        prefix: &str,
        what: &str,
    ) -> Result<u32, SyntaxError> {
        let w = self.word(what)?;
        let short = w.strip_prefix(prefix).unwrap_or(w);
        match table.iter().find(|(n, _)| *n == short) {
            Some((_, v)) => Ok(*v),
            None => {
                self.pos -= 1;
                let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                Err(self.err(&format!("{what} ({})", names.join(", "))))
            }
        }
    }

    /// The words left, as names (identities, groups).
    fn names(&mut self, what: &str) -> Result<Vec<String>, SyntaxError> {
        let mut v = Vec::new();
        while self.more() {
            v.push(self.word(what)?.to_string());
        }
        Ok(v)
    }

    /// Whether the next token is the word `w`; consumes it if so.
    fn keyword(&mut self, w: &str) -> bool {
        let found = matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x == w);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Whether the last token is `NULL` (then [`Args::end_at`] stops before it).
    fn trailing_null(&self) -> bool {
        self.toks.len() > self.pos && self.toks.last() == Some(&Tok::Word("NULL".into()))
    }

    /// The remaining tokens as values.
    fn values(&mut self, what: &str) -> Result<Vec<Value>, SyntaxError> {
        let mut v = Vec::new();
        while self.more() {
            v.push(match &self.toks[self.pos] {
                Tok::Str(s) => Value::Str(s.clone()),
                Tok::Word(w) => Value::from_word(w),
                _ => return Err(self.err(what)),
            });
            self.pos += 1;
        }
        Ok(v)
    }

    fn more(&self) -> bool {
        self.pos < self.toks.len()
    }

    fn end(&self) -> Result<(), SyntaxError> {
        if self.more() {
            Err(self.err("nothing more (or `->` and the expected result)"))
        } else {
            Ok(())
        }
    }
}

const TIMEOUT: &str = "a timeout in milliseconds or INFINITE";

/// Parses an operation and its arguments (the whole statement after `ACTOR:` and `NAME =`).
pub(super) fn parse_op(toks: &[Tok], line: usize, registry: &Registry) -> Result<Op, SyntaxError> {
    let name = match toks.first() {
        Some(Tok::Word(w)) => w.as_str(),
        Some(t) => {
            return Err(SyntaxError {
                line,
                message: format!("expected an operation ({OPS}), found `{}`", t.show()),
            })
        }
        None => {
            return Err(SyntaxError {
                line,
                message: format!("expected an operation ({OPS})"),
            })
        }
    };
    let mut a = Args {
        registry,
        op: name,
        toks,
        pos: 1,
        line,
    };
    let op = match name {
        "SimpleStream" => {
            let data = a.string("the stream's contents as a string, such as \"hello, world\"")?;
            let kind = if a.more() {
                match a.word("`strict` or nothing")? {
                    "strict" => ServerKind::ManualStrict,
                    _ => {
                        a.pos -= 1;
                        return Err(a.err("`strict` or nothing"));
                    }
                }
            } else {
                ServerKind::Manual
            };
            Op::SimpleStream { data, kind }
        }
        "SimpleStreamSyncOnly" => {
            let data = a.string("the stream's contents as a string")?;
            Op::SimpleStream {
                data,
                kind: ServerKind::SyncOnly,
            }
        }
        "ManualResetEvent" => Op::ManualResetEvent,
        "StdEvent" => Op::StdEvent,
        "SynchronizeContainer" => Op::SynchronizeContainer,
        "QueryInterface" => Op::QueryInterface {
            target: a.var("the variable to query")?,
            iface: a.iface("an interface name")?,
        },
        "AddRef" => Op::AddRef {
            target: a.var("a variable")?,
        },
        "Release" => Op::Release {
            target: a.var("a variable")?,
        },
        "CreateCall" => {
            let factory = a.var("the factory variable")?;
            let riid = a.iface("the asynchronous interface (AsyncISimpleStream)")?;
            let more_words = |a: &Args<'_>| matches!(a.toks.get(a.pos), Some(Tok::Word(w)) if w != "outer" && w != "NULL");
            let riid2 = if more_words(&a) {
                a.iface("the returned interface, `outer`, `NULL` or nothing")?
            } else {
                riid.clone()
            };
            let outer = if a.keyword("outer") {
                Some(a.var("the controlling unknown's variable")?)
            } else {
                None
            };
            let ppv = !a.keyword("NULL");
            Op::CreateCall {
                factory,
                riid,
                riid2,
                outer,
                ppv,
            }
        }
        "CoCreateInstance" => {
            let clsid = a.clsid("a class")?;
            let riid = match a.toks.get(a.pos) {
                Some(Tok::Word(w)) if w != "outer" => a.iface("the interface asked for")?,
                _ => Iface {
                    name: "IUnknown".into(),
                    iid: crate::guid::IID_IUnknown,
                },
            };
            let outer = if a.keyword("outer") {
                Some(a.var("the controlling unknown's variable")?)
            } else {
                None
            };
            Op::CoCreateInstance { clsid, riid, outer }
        }
        "Outer" => Op::Outer,
        "Signals" | "Resets" => Op::OuterCount {
            outer: a.var("an `Outer` variable")?,
            signals: name == "Signals",
        },
        "GetHandle" => Op::GetHandle {
            target: a.var("an event or call object variable")?,
        },
        "CoEnableCallCancellation" | "CoDisableCallCancellation" => Op::CallCancellation {
            enable: name == "CoEnableCallCancellation",
        },
        "Wait" => {
            let target = a.var("an event or call object variable")?;
            let (flags, timeout) = a.flags_timeout(toks.len())?;
            Op::Wait {
                target,
                flags,
                timeout,
            }
        }
        "Signal" => Op::Signal {
            target: a.var("an event or call object variable")?,
        },
        "Reset" => Op::Reset {
            target: a.var("an event or call object variable")?,
        },
        "Cancel" => Op::Cancel {
            call: a.var("the call object variable")?,
            seconds: a.num(
                "the seconds to wait for the server, or INFINITE",
                Some(RPC_C_CANCEL_INFINITE_TIMEOUT),
            )?,
        },
        "TestCancel" => Op::TestCancel {
            call: a.var("the call object variable")?,
        },
        "AddSynchronize" => {
            let container = a.var("the container variable")?;
            let sync = if a.keyword("NULL") {
                None
            } else {
                Some(a.var("an event or call object variable, or NULL")?)
            };
            Op::AddSynchronize { container, sync }
        }
        "WaitMultiple" => {
            let container = a.var("the container variable")?;
            let out = !a.trailing_null();
            let end = toks.len() - usize::from(!out);
            let (flags, timeout) = a.flags_timeout(end)?;
            if !out {
                a.pos += 1;
            }
            Op::WaitMultiple {
                container,
                flags,
                timeout,
                out,
            }
        }
        "CoWaitForMultipleHandles" => {
            let flags = a.flags()?;
            let timeout = a.num(TIMEOUT, Some(INFINITE))?;
            // `NULL` in place of the handles is `pHandles = NULL`; a `NULL` after them (or
            // after that `NULL`) is `lpdwindex = NULL`.
            let handles = if a.keyword("NULL") {
                None
            } else {
                let mut v = Vec::new();
                while a.more() && !(a.toks.len() - a.pos == 1 && a.trailing_null()) {
                    v.push(a.var("an event or call object variable, or NULL")?);
                }
                Some(v)
            };
            let index = !a.keyword("NULL");
            Op::CoWaitForMultipleHandles {
                flags,
                timeout,
                handles,
                index,
            }
        }
        "Complete" => Op::Complete {
            call: a.var("the call object variable")?,
        },
        "Fail" => {
            let call = a.var("the call object variable")?;
            let w = a.word("the failure HRESULT, such as E_FAIL")?;
            let hr = parse_hresult(w).map_err(|_| {
                a.pos -= 1;
                a.err("the failure HRESULT, such as E_FAIL")
            })?;
            Op::Fail { call, hr }
        }
        "ServerTestCancel" => Op::ServerTestCancel {
            call: a.var("the call object variable")?,
        },
        "CoInitializeEx" => match a.word("`STA` or `MTA`")? {
            "STA" | "COINIT_APARTMENTTHREADED" => Op::CoInitializeEx { sta: true },
            "MTA" | "COINIT_MULTITHREADED" => Op::CoInitializeEx { sta: false },
            _ => {
                a.pos -= 1;
                return Err(a.err("`STA` or `MTA`"));
            }
        },
        "CoUninitialize" => Op::CoUninitialize,
        "Marshal" => {
            let target = a.var("the variable of the object to marshal")?;
            let iface = a.iface("the interface to marshal")?;
            if registry.iface_of_sync(&iface.iid).is_none() {
                a.pos -= 1;
                let names = registry.marshalable_names().join(", ");
                return Err(a.err(&format!("a registered interface ({names})")));
            }
            Op::Marshal { target, iface }
        }
        "Unmarshal" => Op::Unmarshal {
            stream: a.var("the stream variable (bound by `Marshal`)")?,
        },
        "Pump" => Op::Pump,
        "Call" => {
            let target = a.var("the object or proxy variable")?;
            let method = a.word("a method name, such as Read")?.to_string();
            if registry.ifaces_with(&method).is_none() {
                a.pos -= 1;
                return Err(a.err("a method of a registered interface, such as Read"));
            }
            Op::Call {
                target,
                method,
                args: a.values("the in-parameters")?,
            }
        }
        "CoCancelCall" => {
            let actor = a.var("the actor whose call is cancelled")?;
            let seconds = a.num(
                "the seconds to wait for the server, or INFINITE",
                Some(RPC_C_CANCEL_INFINITE_TIMEOUT),
            )?;
            Op::CoCancelCall { actor, seconds }
        }
        "CoTestCancel" => Op::CoTestCancel,
        "CoGetCancelObject" => Op::CoGetCancelObject {
            actor: a.var("the actor whose call's cancel object is asked for")?,
        },
        "SetIdentity"
        | "WhoAmI"
        | "SetBlanket"
        | "QueryBlanket"
        | "CopyProxy"
        | "AccessPolicy"
        | "CoGetCallContext"
        | "CoImpersonateClient"
        | "CoRevertToSelf" => Op::Security(security_op(name, &mut a)?),
        "Manual" | "Pool" => {
            let server = a.word("a registered server's name")?;
            if registry.server_of(server).is_none() {
                a.pos -= 1;
                let names = registry.server_names().join(", ");
                return Err(a.err(&format!("a registered server's name (one of {names})")));
            }
            let mut args = a.values("the server's arguments")?;
            let strict = args.last() == Some(&Value::Name("strict".into()));
            if strict {
                args.pop();
            }
            let serving = if name == "Manual" {
                Serving::Manual { strict }
            } else {
                Serving::Pool { strict }
            };
            Op::Server {
                server: server.to_string(),
                serving,
                args,
            }
        }
        other if registry.server_of(other).is_some() => Op::Server {
            server: other.to_string(),
            serving: Serving::Plain,
            args: a.values("the server's arguments")?,
        },
        other if other.starts_with("Begin_") && other.len() > 6 => Op::Begin {
            call: a.var("the call object variable")?,
            method: other["Begin_".len()..].to_string(),
            args: a.values("the in-parameters")?,
        },
        other if other.starts_with("Finish_") && other.len() > 7 => Op::Finish {
            call: a.var("the call object variable")?,
            method: other["Finish_".len()..].to_string(),
        },
        other => {
            let servers = registry.server_names().join(", ");
            return Err(SyntaxError {
                line,
                message: format!(
                    "unknown operation `{other}`: expected one of {OPS} (servers: {servers})"
                ),
            });
        }
    };
    a.end()?;
    Ok(op)
}

const AUTHN: &str = "an authentication level";
const IMP: &str = "an impersonation level";

/// A security operation's arguments (`docs/scenarios.md`, "Security").
fn security_op(name: &str, a: &mut Args<'_>) -> Result<SecurityOp, SyntaxError> {
    Ok(match name {
        "SetIdentity" => SecurityOp::SetIdentity {
            name: a.word("the principal's name")?.to_string(),
            groups: a.names("a group name")?,
        },
        "WhoAmI" => SecurityOp::WhoAmI,
        "SetBlanket" => {
            let target = a.var("the proxy or call object variable")?;
            let authn_level = a.level(&AUTHN_LEVELS, "RPC_C_AUTHN_LEVEL_", AUTHN)?;
            let imp_level = a.level(&IMP_LEVELS, "RPC_C_IMP_LEVEL_", IMP)?;
            let auth_info = if a.keyword("as") {
                Some(a.word("the principal's name after `as`")?.to_string())
            } else {
                None
            };
            let capabilities = if a.keyword("STATIC") {
                crate::security::EOAC_STATIC_CLOAKING
            } else if a.keyword("DYNAMIC") {
                crate::security::EOAC_DYNAMIC_CLOAKING
            } else {
                crate::security::EOAC_NONE
            };
            SecurityOp::SetBlanket {
                target,
                authn_level,
                imp_level,
                auth_info,
                capabilities,
            }
        }
        "QueryBlanket" => SecurityOp::QueryBlanket {
            target: a.var("the proxy or call object variable")?,
        },
        "CopyProxy" => SecurityOp::CopyProxy {
            target: a.var("the proxy or call object variable")?,
        },
        "AccessPolicy" => {
            let target = a.var("the object variable")?;
            let mut allowed = Vec::new();
            let mut min_level = crate::security::RPC_C_AUTHN_LEVEL_NONE;
            while a.more() {
                if a.keyword("min") {
                    min_level = a.level(&AUTHN_LEVELS, "RPC_C_AUTHN_LEVEL_", AUTHN)?;
                    break;
                }
                allowed.push(
                    a.word("a principal or group name, or `min LEVEL`")?
                        .to_string(),
                );
            }
            SecurityOp::AccessPolicy {
                target,
                allowed,
                min_level,
            }
        }
        "CoGetCallContext" => SecurityOp::CoGetCallContext,
        "CoImpersonateClient" => SecurityOp::CoImpersonateClient,
        _ => SecurityOp::CoRevertToSelf,
    })
}
