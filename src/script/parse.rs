//! Scenario text → [`Step`]s: the statement grammar ([`Op`], the one vocabulary of
//! operations) and the static checks (variables defined before use, every `start` joined, no
//! step for an actor that is still running a started operation, `Begin_`/`Finish_` methods
//! and literal arguments valid for the call object's interface when it is known). Tokens come
//! from [`super::lex`]; names of interfaces and servers from a [`Registry`].
//!
//! The grammar, one statement per line (`#` starts a comment; blank lines are ignored):
//!
//! ```text
//! line    = [actor ":"] [var "="] op arg* ["->" expect]
//!         | actor ":" "start" op arg*
//!         | actor ":" "join" ["->" expect]
//! expect  = hresult value*          hresult: a name (S_OK, RPC_E_CALL_PENDING, ...) or 0x...
//! value   = "string" | number | name
//! ```
//!
//! See `docs/scenarios.md` for every operation.

use std::collections::HashMap;

use super::lex::{cowait_flags, is_ident, number, tokenize, Tok};
pub use super::op::{
    hr_name, Expect, Iface, Op, ServerKind, Step, StepKind, SyntaxError, DEFAULT_ACTOR,
};
use super::registry::{ErasedInterface, Registry, Serving};
use super::value::Value;
use crate::call::RPC_C_CANCEL_INFINITE_TIMEOUT;
use crate::guid::IID;
use crate::hresult::parse_hresult;
use crate::sync::INFINITE;

/// The operation names, for "expected an operation" messages.
const OPS: &str = "SimpleStream, SimpleStreamSyncOnly, Manual, Pool, ManualResetEvent, StdEvent, \
SynchronizeContainer, CoCreateInstance, Outer, QueryInterface, AddRef, Release, CreateCall, \
Begin_<Method>, Finish_<Method>, Wait, Signal, Reset, GetHandle, Signals, Resets, Cancel, \
TestCancel, CoEnableCallCancellation, CoDisableCallCancellation, AddSynchronize, WaitMultiple, \
CoWaitForMultipleHandles, Complete, Fail, ServerTestCancel";

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

fn parse_op(toks: &[Tok], line: usize, registry: &Registry) -> Result<Op, SyntaxError> {
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

/// What a `start` requires: `-> blocks` (`true`) or `-> returns` (`false`).
fn parse_blocks(toks: &[Tok], line: usize) -> Result<bool, SyntaxError> {
    match toks {
        [Tok::Word(w)] if w == "blocks" => Ok(true),
        [Tok::Word(w)] if w == "returns" => Ok(false),
        _ => Err(SyntaxError {
            line,
            message: "start: expected `-> blocks` or `-> returns` (put the expected result on \
                      the `join`)"
                .into(),
        }),
    }
}

fn parse_expect(toks: &[Tok], line: usize) -> Result<Expect, SyntaxError> {
    let err = |message: String| SyntaxError { line, message };
    let hr = match toks.first() {
        Some(Tok::Word(w)) => parse_hresult(w).map_err(|_| {
            err(format!(
                "expected an HRESULT name or hex value after `->`, found `{w}`"
            ))
        })?,
        Some(t) => {
            return Err(err(format!(
                "expected an HRESULT after `->`, found `{}`",
                t.show()
            )))
        }
        None => return Err(err("expected an HRESULT after `->`".into())),
    };
    let mut values = Vec::new();
    for t in &toks[1..] {
        values.push(match t {
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::Word(w) => Value::from_word(w),
            other => {
                return Err(err(format!(
                    "expected an out-parameter value, found `{}`",
                    other.show()
                )))
            }
        });
    }
    Ok(Expect { hr, values })
}

fn canonical(toks: &[Tok]) -> String {
    toks.iter().map(Tok::show).collect::<Vec<_>>().join(" ")
}

/// Parses a whole script. Checks, besides the grammar: every variable is bound before it is
/// used; `start` only for operations that can block; every started operation is joined, and
/// its actor does nothing else until then; a `Begin_`/`Finish_` on a variable whose interface
/// is known (bound by `CreateCall` or `QueryInterface` of a registered asynchronous interface)
/// names one of its methods, with literal arguments of the right count and types.
pub fn parse(source: &str, registry: &Registry) -> Result<Vec<Step>, SyntaxError> {
    let mut steps = Vec::new();
    // The asynchronous interface each variable is known to be a call object of.
    let mut call_iface: HashMap<String, IID> = HashMap::new();
    let mut defined: HashMap<String, usize> = HashMap::new();
    let mut started: HashMap<String, usize> = HashMap::new();
    for (i, text) in source.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| SyntaxError { line, message };
        if let Some(note) = text.trim_start().strip_prefix('>') {
            let note = note.trim().to_string();
            steps.push(Step {
                line,
                actor: DEFAULT_ACTOR.to_string(),
                kind: StepKind::Say(note.clone()),
                expect: None,
                text: note,
            });
            continue;
        }
        let toks = tokenize(text, line)?;
        if toks.is_empty() {
            continue;
        }
        let (times, toks) = repeat_count(&toks, line)?;
        for _ in 0..times {
            let (actor, rest) = match (&toks[0], toks.get(1)) {
                (Tok::Word(w), Some(Tok::Colon)) => {
                    if !is_ident(w) {
                        return Err(err(format!(
                            "expected an actor name before `:`, found `{w}`"
                        )));
                    }
                    (w.clone(), &toks[2..])
                }
                _ => (DEFAULT_ACTOR.to_string(), &toks[..]),
            };
            let arrow = rest.iter().position(|t| *t == Tok::Arrow);
            let is_start = rest.first() == Some(&Tok::Word("start".into()));
            let (body, expect, start_blocks) = match arrow {
                Some(p) if is_start => {
                    (&rest[..p], None, Some(parse_blocks(&rest[p + 1..], line)?))
                }
                Some(p) => (&rest[..p], Some(parse_expect(&rest[p + 1..], line)?), None),
                None => (rest, None, None),
            };
            if let Some(&first) = started.get(&actor) {
                if body.first() != Some(&Tok::Word("join".into())) {
                    return Err(err(format!(
                    "{actor} is still running the operation started at line {first}: expected `{actor}: join` first"
                )));
                }
            }
            let kind = match body.first() {
                Some(Tok::Word(w)) if w == "join" => {
                    if body.len() > 1 {
                        return Err(err(format!(
                            "join: expected nothing more, found `{}`",
                            body[1].show()
                        )));
                    }
                    if started.remove(&actor).is_none() {
                        return Err(err(format!(
                            "{actor}: join: nothing was started by {actor}"
                        )));
                    }
                    StepKind::Join
                }
                Some(Tok::Word(w)) if w == "start" => {
                    let op = parse_op(&body[1..], line, registry)?;
                    if !op.startable() {
                        return Err(err(
                        "start: expected an operation that can block (Begin_, Finish_, Wait, Cancel, TestCancel, WaitMultiple, CoWaitForMultipleHandles)"
                            .into(),
                    ));
                    }
                    started.insert(actor.clone(), line);
                    StepKind::Start {
                        op,
                        blocks: start_blocks,
                    }
                }
                _ => {
                    let (bind, op_toks) = match (body.first(), body.get(1)) {
                        (Some(Tok::Word(v)), Some(Tok::Eq)) => {
                            if !is_ident(v) {
                                return Err(err(format!(
                                    "expected a variable name before `=`, found `{v}`"
                                )));
                            }
                            (Some(v.clone()), &body[2..])
                        }
                        _ => (None, body),
                    };
                    let op = parse_op(op_toks, line, registry)?;
                    if op.creates() && bind.is_none() {
                        return Err(err(format!(
                            "expected `NAME = {}`: the new object needs a variable",
                            canonical(op_toks)
                        )));
                    }
                    if !op.creates() {
                        if let Some(b) = &bind {
                            return Err(err(format!(
                                "`{b} =`: this operation creates nothing to bind"
                            )));
                        }
                    }
                    StepKind::Do { bind, op }
                }
            };
            let op = match &kind {
                StepKind::Do { op, .. } | StepKind::Start { op, .. } => Some(op),
                StepKind::Join | StepKind::Say(_) => None,
            };
            if let Some(op) = op {
                for v in op.uses() {
                    if !defined.contains_key(v) {
                        return Err(err(format!(
                            "unknown variable `{v}`: expected one bound by an earlier `{v} = ...`"
                        )));
                    }
                }
            }
            if let Some(op) = op {
                check_method(op, &call_iface, registry).map_err(err)?;
            }
            if let StepKind::Do { bind: Some(b), op } = &kind {
                let known = match op {
                    Op::CreateCall { riid, .. } => Some(riid.iid),
                    Op::QueryInterface { target, iface } => Some(iface.iid)
                        .filter(|iid| registry.iface_of_async(iid).is_some())
                        .or_else(|| call_iface.get(target).copied()),
                    _ => None,
                };
                if let Some(iid) = known.filter(|iid| registry.iface_of_async(iid).is_some()) {
                    call_iface.insert(b.clone(), iid);
                }
                if let Some(first) = defined.get(b) {
                    return Err(err(format!(
                        "`{b}` is already bound (line {first}): names are bound once"
                    )));
                }
                defined.insert(b.clone(), line);
            }
            let text = match arrow {
                Some(p) => canonical(&rest[..p]),
                None => canonical(rest),
            };
            steps.push(Step {
                line,
                actor,
                kind,
                expect,
                text,
            });
        }
    }
    if let Some((actor, line)) = started.iter().min_by_key(|(_, l)| **l) {
        return Err(SyntaxError {
            line: *line,
            message: format!("{actor}: the operation started here is never joined: expected `{actor}: join` later"),
        });
    }
    Ok(steps)
}

/// The most times `repeat N:` runs a statement.
const MAX_REPEAT: u32 = 10_000;

/// `repeat N: STATEMENT`: `N` and the statement's tokens; any other line: 1 and the line.
fn repeat_count(toks: &[Tok], line: usize) -> Result<(u32, &[Tok]), SyntaxError> {
    match toks {
        [Tok::Word(r), rest @ ..] if r == "repeat" => match rest {
            [Tok::Word(n), Tok::Colon, stmt @ ..] if !stmt.is_empty() => match number(n, None) {
                Some(n @ 1..=MAX_REPEAT) => Ok((n, stmt)),
                _ => Err(SyntaxError {
                    line,
                    message: format!(
                        "repeat: expected a count from 1 to {MAX_REPEAT}, found `{n}`"
                    ),
                }),
            },
            _ => Err(SyntaxError {
                line,
                message: "repeat: expected `repeat N: STATEMENT`".into(),
            }),
        },
        _ => Ok((1, toks)),
    }
}

/// A `Begin_`/`Finish_` on a call object of a known interface: the method exists and the
/// literal arguments fit.
fn check_method(
    op: &Op,
    call_iface: &HashMap<String, IID>,
    registry: &Registry,
) -> Result<(), String> {
    let (call, method, args, verb) = match op {
        Op::Begin { call, method, args } => (call, method, Some(args), "Begin_"),
        Op::Finish { call, method } => (call, method, None, "Finish_"),
        _ => return Ok(()),
    };
    let Some(iface) = call_iface
        .get(call)
        .and_then(|i| registry.iface_of_async(i))
    else {
        return Ok(());
    };
    let index = method_of(&**iface, verb, method)?;
    match args {
        Some(args) => iface
            .check_in(index, args)
            .map_err(|e| format!("{verb}{method}: {e}")),
        None => Ok(()),
    }
}

/// The index of `method` in `iface`, or an error naming its methods.
pub(crate) fn method_of(
    iface: &dyn ErasedInterface,
    verb: &str,
    method: &str,
) -> Result<usize, String> {
    let methods = iface.methods();
    methods.iter().position(|m| *m == method).ok_or_else(|| {
        format!(
            "{verb}{method}: {} has no method `{method}`: expected one of {}",
            iface.descs()[1].name,
            methods.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hresult::{RPC_S_CALLPENDING, S_OK};

    #[test]
    fn parses_the_seed_statements() {
        let s = parse(
            "server = SimpleStream \"hello, world\"  # a server\n\
             \n\
             client: factory = QueryInterface server ICallFactory -> S_OK\n\
             client: call = CreateCall factory AsyncISimpleStream\n\
             client: Begin_Read call 5 -> RPC_E_CALL_PENDING\n\
             t1: start Finish_Read call\n\
             server: Complete call\n\
             t1: join -> S_OK \"hello\"\n",
            &Registry::new(),
        )
        .unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].actor, DEFAULT_ACTOR);
        assert_eq!(s[1].line, 3);
        assert_eq!(
            s[3].expect,
            Some(Expect {
                hr: RPC_S_CALLPENDING,
                values: vec![]
            })
        );
        assert_eq!(
            s[6].expect,
            Some(Expect {
                hr: S_OK,
                values: vec![Value::Str(b"hello".to_vec())]
            })
        );
        assert_eq!(
            s[4].kind,
            StepKind::Start {
                op: Op::Finish {
                    call: "call".into(),
                    method: "Read".into()
                },
                blocks: None,
            }
        );
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let r = Registry::new();
        let e = parse("c = ManualResetEvent\nWait c soon\n", &r).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("expected a timeout"), "{}", e.message);
        let e = parse("Wait nothing 0\n", &r).unwrap_err();
        assert!(
            e.message.contains("unknown variable `nothing`"),
            "{}",
            e.message
        );
        let e = parse("t1: start Release x\n", &r).unwrap_err();
        assert!(e.message.contains("start"), "{}", e.message);
        let e = parse("e = StdEvent\nt1: start Wait e INFINITE\n", &r).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never joined"));
    }
}
