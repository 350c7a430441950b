//! Scenario text → [`Step`]s: the statement grammar ([`Op`], the one vocabulary of
//! operations) and the static checks (variables defined before use, every `start` joined, no
//! step for an actor that is still running a started operation, `Begin_`/`Finish_` methods
//! and literal arguments valid for the call object's interface when it is known). Tokens come
//! from [`super::lex`]; names of interfaces and servers from a [`Registry`].
//!
//! The grammar, one statement per line (`#` starts a comment; blank lines are ignored):
//!
//! ```text
//! line    = ["repeat" N ":"] statement     the statement N times, at this line
//! statement = [actor ":"] [var "="] op arg* ["->" expect]
//!         | actor ":" "start" op arg* ["->" ("blocks" | "returns")]
//!         | actor ":" "join" ["->" expect]
//! expect  = results prop*           the first result is the written order's
//! results = result ("|" result)*     others: what another order may give (docs/checking.md)
//! prop    = ("always" | "never" | "sometimes") results
//! result  = hresult value*           hresult: a name (S_OK, RPC_E_CALL_PENDING, ...) or 0x...
//! value   = "string" | number | name
//! ```
//!
//! See `docs/scenarios.md` for every operation.

use std::collections::HashMap;

mod operation;

use super::lex::{is_ident, number, tokenize, Tok};
pub use super::op::{
    hr_name, level_name, Expect, Iface, Op, Property, Quantifier, SecurityOp, ServerKind, Step,
    StepKind, SyntaxError, AUTHN_LEVELS, DEFAULT_ACTOR, IMP_LEVELS,
};
use super::registry::{ErasedInterface, Registry};
use super::value::Value;
use crate::guid::IID;
use crate::hresult::parse_hresult;
use operation::parse_op;

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

/// The expectation after `->`: results separated by `|`, then `always`/`never`/`sometimes`
/// properties, each with its own `|`-separated results.
fn parse_expect(toks: &[Tok], line: usize) -> Result<Expect, SyntaxError> {
    let quantifier = |t: &Tok| match t {
        Tok::Word(w) if w == "always" => Some(Quantifier::Always),
        Tok::Word(w) if w == "never" => Some(Quantifier::Never),
        Tok::Word(w) if w == "sometimes" => Some(Quantifier::Sometimes),
        _ => None,
    };
    let first_prop = toks.iter().position(|t| quantifier(t).is_some());
    let (head, mut rest) = toks.split_at(first_prop.unwrap_or(toks.len()));
    let mut results = parse_results(head, line)?.into_iter();
    let mut expect = results.next().ok_or_else(|| SyntaxError {
        line,
        message: "expected an HRESULT after `->`".into(),
    })?;
    expect.also = results.collect();
    while let Some(q) = rest.first().and_then(quantifier) {
        let end = rest[1..]
            .iter()
            .position(|t| quantifier(t).is_some())
            .map_or(rest.len(), |p| p + 1);
        if end == 1 {
            return Err(SyntaxError {
                line,
                message: "expected a result after `always`, `never` or `sometimes`".into(),
            });
        }
        let results = parse_results(&rest[1..end], line)?;
        expect.props.push(Property {
            quantifier: q,
            results,
        });
        rest = &rest[end..];
    }
    Ok(expect)
}

/// `result ("|" result)*`.
fn parse_results(toks: &[Tok], line: usize) -> Result<Vec<Expect>, SyntaxError> {
    toks.split(|t| *t == Tok::Word("|".into()))
        .map(|part| parse_result(part, line))
        .collect()
}

fn parse_result(toks: &[Tok], line: usize) -> Result<Expect, SyntaxError> {
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
        None => return Err(err("expected an HRESULT after `->` (or `|`)".into())),
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
    Ok(Expect {
        hr,
        values,
        also: Vec::new(),
        props: Vec::new(),
    })
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
                _ => (DEFAULT_ACTOR.to_string(), toks),
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
                values: vec![],
                also: vec![],
                props: vec![],
            })
        );
        assert_eq!(
            s[6].expect,
            Some(Expect {
                hr: S_OK,
                values: vec![Value::Str(b"hello".to_vec())],
                also: vec![],
                props: vec![],
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
    fn alternatives_and_properties_follow_the_first_result() {
        let r = Registry::new();
        let s = parse(
            "e = StdEvent\nWait e 0 -> RPC_S_CALLPENDING | S_OK sometimes S_OK never E_FAIL | E_UNEXPECTED\n",
            &r,
        )
        .unwrap();
        let e = s[1].expect.as_ref().unwrap();
        assert_eq!(e.hr, RPC_S_CALLPENDING);
        assert_eq!(e.also.len(), 1);
        assert_eq!(e.also[0].hr, S_OK);
        assert_eq!(e.props.len(), 2);
        assert_eq!(e.props[0].quantifier, Quantifier::Sometimes);
        assert_eq!(e.props[1].quantifier, Quantifier::Never);
        assert_eq!(e.props[1].results.len(), 2);
        let err = parse("e = StdEvent\nWait e 0 -> S_OK |\n", &r).unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse("e = StdEvent\nWait e 0 -> S_OK always\n", &r).unwrap_err();
        assert!(err.message.contains("always"), "{}", err.message);
    }

    #[test]
    fn apartment_statements_parse_into_their_operations() {
        let r = Registry::new();
        let s = parse(
            "sta: CoInitializeEx STA\n\
             client: CoInitializeEx MTA\n\
             server = SimpleStreamSyncOnly \"hi\"\n\
             sta: s = Marshal server ISimpleStream\n\
             client: p = Unmarshal s\n\
             sta: Pump -> 0\n\
             client: start Call p Read 2\n\
             other: CoCancelCall client INFINITE\n\
             other: c = CoGetCancelObject client\n\
             other: CoTestCancel\n\
             client: join\n\
             sta: CoUninitialize\n",
            &r,
        )
        .unwrap();
        let ops: Vec<&Op> = s
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Do { op, .. } | StepKind::Start { op, .. } => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(ops[0], &Op::CoInitializeEx { sta: true });
        assert_eq!(ops[1], &Op::CoInitializeEx { sta: false });
        assert!(
            matches!(ops[3], Op::Marshal { target, iface } if target == "server" && iface.name == "ISimpleStream")
        );
        assert_eq!(ops[4], &Op::Unmarshal { stream: "s".into() });
        assert_eq!(ops[5], &Op::Pump);
        assert!(
            matches!(ops[6], Op::Call { method, args, .. } if method == "Read" && args == &[Value::Num(2)])
        );
        assert_eq!(
            ops[7],
            &Op::CoCancelCall {
                actor: "client".into(),
                seconds: crate::call::RPC_C_CANCEL_INFINITE_TIMEOUT
            }
        );
        assert_eq!(
            ops[8],
            &Op::CoGetCancelObject {
                actor: "client".into()
            }
        );
        assert_eq!(ops[9], &Op::CoTestCancel);
        assert_eq!(ops[10], &Op::CoUninitialize);
        assert!(!ops[2].is_apartment());
        assert_eq!(
            ops.iter().filter(|o| o.is_apartment()).count(),
            ops.len() - 1
        );
    }

    #[test]
    fn apartment_statements_say_what_they_expected() {
        let r = Registry::new();
        let e = parse("CoInitializeEx BOTH\n", &r).unwrap_err();
        assert!(e.message.contains("`STA` or `MTA`"), "{}", e.message);
        let e = parse("x = StdEvent\ns = Marshal x ISynchronize\n", &r).unwrap_err();
        assert!(
            e.message
                .contains("a registered interface (ISimpleStream, IWho)"),
            "{}",
            e.message
        );
        let e = parse("x = StdEvent\nMarshal x ISimpleStream\n", &r).unwrap_err();
        assert!(e.message.contains("needs a variable"), "{}", e.message);
        let e = parse("x = StdEvent\nCall x Frobnicate\n", &r).unwrap_err();
        assert!(
            e.message.contains("a method of a registered interface"),
            "{}",
            e.message
        );
        let e = parse("p = Unmarshal nothing\n", &r).unwrap_err();
        assert!(
            e.message.contains("unknown variable `nothing`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn security_statements_parse_into_their_operations() {
        use crate::security::*;
        let r = Registry::new();
        let s = parse(
            "server = SimpleStreamSyncOnly \"hi\"\n\
             sta: SetIdentity svc staff admins\n\
             client: WhoAmI -> S_OK \"SYSTEM\"\n\
             sta: AccessPolicy server alice Everyone min PKT\n\
             sta: AccessPolicy server bob\n\
             client: SetBlanket server RPC_C_AUTHN_LEVEL_NONE RPC_C_IMP_LEVEL_ANONYMOUS\n\
             client: SetBlanket server PKT_PRIVACY IMPERSONATE as bob\n\
             client: SetBlanket server DEFAULT DEFAULT STATIC\n\
             client: QueryBlanket server -> S_OK CONNECT IDENTIFY\n\
             client: c = CopyProxy server\n\
             client: CoGetCallContext\n\
             client: CoImpersonateClient\n\
             client: CoRevertToSelf\n",
            &r,
        )
        .unwrap();
        let ops: Vec<&SecurityOp> = s
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Do {
                    op: Op::Security(op),
                    ..
                } => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(ops.len(), 12);
        assert_eq!(
            ops[0],
            &SecurityOp::SetIdentity {
                name: "svc".into(),
                groups: vec!["staff".into(), "admins".into()]
            }
        );
        assert_eq!(ops[1], &SecurityOp::WhoAmI);
        assert_eq!(
            ops[2],
            &SecurityOp::AccessPolicy {
                target: "server".into(),
                allowed: vec!["alice".into(), "Everyone".into()],
                min_level: RPC_C_AUTHN_LEVEL_PKT
            }
        );
        assert!(
            matches!(ops[3], SecurityOp::AccessPolicy { min_level, .. } if *min_level == RPC_C_AUTHN_LEVEL_NONE)
        );
        assert_eq!(
            ops[4],
            &SecurityOp::SetBlanket {
                target: "server".into(),
                authn_level: RPC_C_AUTHN_LEVEL_NONE,
                imp_level: RPC_C_IMP_LEVEL_ANONYMOUS,
                auth_info: None,
                capabilities: EOAC_NONE
            }
        );
        assert!(
            matches!(ops[5], SecurityOp::SetBlanket { auth_info: Some(n), authn_level, .. } if n == "bob" && *authn_level == RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
        );
        assert!(
            matches!(ops[6], SecurityOp::SetBlanket { capabilities, imp_level, .. } if *capabilities == EOAC_STATIC_CLOAKING && *imp_level == RPC_C_IMP_LEVEL_DEFAULT)
        );
        assert_eq!(
            s[8].expect.as_ref().unwrap().values,
            vec![
                Value::Name("CONNECT".into()),
                Value::Name("IDENTIFY".into())
            ]
        );
        assert_eq!(ops[9], &SecurityOp::CoGetCallContext);
        assert_eq!(ops[10], &SecurityOp::CoImpersonateClient);
        assert_eq!(ops[11], &SecurityOp::CoRevertToSelf);
        assert!(ops
            .iter()
            .all(|o| Op::Security((*o).clone()).is_apartment()));
    }

    #[test]
    fn security_statements_say_what_they_expected() {
        let r = Registry::new();
        let e = parse("x = StdEvent\nSetBlanket x LOUD IDENTIFY\n", &r).unwrap_err();
        assert!(
            e.message
                .contains("an authentication level (DEFAULT, NONE, CONNECT"),
            "{}",
            e.message
        );
        let e = parse("x = StdEvent\nSetBlanket x CONNECT SOMETIMES\n", &r).unwrap_err();
        assert!(
            e.message.contains("an impersonation level"),
            "{}",
            e.message
        );
        let e = parse("x = StdEvent\nSetBlanket x CONNECT IDENTIFY as\n", &r).unwrap_err();
        assert!(e.message.contains("after `as`"), "{}", e.message);
        let e = parse("x = StdEvent\nAccessPolicy x alice min\n", &r).unwrap_err();
        assert!(
            e.message.contains("an authentication level"),
            "{}",
            e.message
        );
        let e = parse("QueryBlanket nothing\n", &r).unwrap_err();
        assert!(
            e.message.contains("unknown variable `nothing`"),
            "{}",
            e.message
        );
        let e = parse("SetIdentity\n", &r).unwrap_err();
        assert!(e.message.contains("the principal's name"), "{}", e.message);
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
