//! Bytes → operation sequences: the decoder the cargo-fuzz targets (`fuzz/`) and the proptest
//! suites share, so a byte string found by either replays in the other.
//!
//! Every byte string decodes to *some* sequence (total, never panics): bytes are read one at a
//! time, a missing argument byte reads as 0, and decoding stops at the end of the input or after
//! [`MAX_OPS`] operations. Argument values come from small tables ([`HRESULTS`],
//! [`CANCEL_SECONDS`], [`FLAGS`], [`TIMEOUTS`], [`iids`]) so that every decoded value is one the
//! runners can execute quickly: finite timeouts are 0 or 1 ms, cancel windows are 0 s, 1 s (the
//! only window the runners let expire), 3600 s or infinite (resolved by the server).
//!
//! The encoders are the inverse for values inside the tables: `decode(encode(x)) == x`. They
//! turn readable operation lists into corpus seeds (`fuzz/corpus/*/`).
//!
//! # Format
//!
//! *Call object* ([`call_ops`]): one header byte (bit 0: [`FinishMode::Strict`]), then per
//! operation an opcode byte (`% 9`) and its arguments:
//!
//! | opcode | operation | argument bytes |
//! |---|---|---|
//! | 0 | `Begin_m` | `m & 1` |
//! | 1 | `ServerComplete(hr, outs)` | `HRESULTS[b % 4]`, `len = b % 4`, then `len` out-values |
//! | 2 | `Finish_m` | `m & 1` |
//! | 3 | `Cancel(s)` | `CANCEL_SECONDS[b % 4]` |
//! | 4 | `CancelTimeout` | — |
//! | 5 | `TestCancel()` | — |
//! | 6 | `Wait(flags, ms)` | `FLAGS[b % 4]`, `TIMEOUTS[b % 3]` |
//! | 7 | `QueryInterface(iid)` | `iids()[b % 8]` |
//! | 8 | `Release()` | — |
//!
//! *Events and container* ([`world_ops`]): a header byte (`1 + (b & 3)` events; bit `2 + i` set
//! makes event `i` a `StdEvent`, clear a `ManualResetEvent`), then per operation an opcode byte
//! (`% 6` for [`WorldProfile::Events`], `% 4` for [`WorldProfile::CoWait`]):
//!
//! | opcode | operation | argument bytes |
//! |---|---|---|
//! | 0 | `event[e].Signal()` | `e % n` |
//! | 1 | `event[e].Reset()` | `e % n` |
//! | 2 | `event[e].Wait(flags, ms)` | `e % n`, `FLAGS[b % 4]`, `TIMEOUTS[b % 3]` |
//! | 3 | `CoWaitForMultipleHandles` | `FLAGS[b % 4]`, `TIMEOUTS[b % 3]`, handles (see below), index (`b & 1 == 0`: present) |
//! | 4 | `container.AddSynchronize(e)` | `0xFF`: NULL, else `e % n` |
//! | 5 | `container.WaitMultiple` | `FLAGS[b % 4]`, `TIMEOUTS[b % 3]`, out (`b & 1 == 0`: present) |
//!
//! Handles: `0xFF` is NULL; `0xFE` is 65 handles (`i % n`, one over the limit); otherwise
//! `len = b % 5` followed by `len` event indices (`% n`).

use crate::guid::{
    IID_ICallFactory, IID_ICancelMethodCalls, IID_IClientSecurity, IID_ISynchronize,
    IID_ISynchronizeHandle, IID_IUnknown, IID,
};
use crate::hresult::{E_FAIL, HRESULT, RPC_E_CALL_CANCELED, S_FALSE, S_OK};
use crate::model::{
    EventClass, FinishMode, ModelOp, COWAIT_WAITALL, INFINITE, MAXIMUM_WAIT_OBJECTS,
    RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use crate::unknown::Interface;

use super::aggregation::{AggOp, Hook, HookPoint};
use super::server_host::HostOp;

/// The most operations one byte string decodes to.
pub const MAX_OPS: usize = 48;

/// The server results a decoded `ServerComplete` can carry.
pub const HRESULTS: [HRESULT; 4] = [S_OK, S_FALSE, E_FAIL, RPC_E_CALL_CANCELED];

/// The `ulSeconds` a decoded `Cancel` can carry: 0 (completes locally at once), 1 (the only
/// window the runners let expire), 3600 and `RPC_C_CANCEL_INFINITE_TIMEOUT` (resolved by the
/// server's completion).
pub const CANCEL_SECONDS: [u32; 4] = [0, 1, 3600, RPC_C_CANCEL_INFINITE_TIMEOUT];

/// The `COWAIT_FLAGS` a decoded wait can carry: default, `WAITALL`, `ALERTABLE` and an
/// undefined bit (0x20, rejected with `E_INVALIDARG`).
pub const FLAGS: [u32; 4] = [0, COWAIT_WAITALL, 2, 0x20];

/// The timeouts a decoded wait can carry: 0, 1 ms and `INFINITE`.
pub const TIMEOUTS: [u32; 3] = [0, 1, INFINITE];

/// The IIDs a decoded `QueryInterface` can ask for: the five the call object answers, two it
/// must refuse (`IClientSecurity` is proxy-only; `ICallFactory` belongs to the server object),
/// and the synchronous `IProbe`.
pub fn iids() -> [IID; 8] {
    [
        super::PROBE_ASYNC_IID,
        IID_IUnknown,
        IID_ISynchronize,
        IID_ISynchronizeHandle,
        IID_ICancelMethodCalls,
        IID_IClientSecurity,
        IID_ICallFactory,
        <dyn super::IProbe as Interface>::IID,
    ]
}

/// Which operation mix [`world_ops`] decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorldProfile {
    /// `Signal`, `Reset`, `Wait`, `CoWaitForMultipleHandles`, `AddSynchronize`,
    /// `WaitMultiple` (opcode `% 6`).
    Events,
    /// `Signal`, `Reset`, `Wait`, `CoWaitForMultipleHandles` only (opcode `% 4`): a quarter of
    /// all operations are `CoWaitForMultipleHandles`.
    CoWait,
}

impl WorldProfile {
    fn opcodes(self) -> u8 {
        match self {
            WorldProfile::Events => 6,
            WorldProfile::CoWait => 4,
        }
    }
}

/// A cursor over the input: a missing byte reads as 0.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    fn opcode(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
    fn arg(&mut self) -> u8 {
        self.opcode().unwrap_or(0)
    }
    fn flags(&mut self) -> u32 {
        FLAGS[self.arg() as usize % FLAGS.len()]
    }
    fn timeout(&mut self) -> u32 {
        TIMEOUTS[self.arg() as usize % TIMEOUTS.len()]
    }
    /// Up to [`MAX_OPS`] operations, until the input ends: each an opcode and what `decode`
    /// reads after it.
    fn ops<T>(&mut self, mut decode: impl FnMut(&mut Self, u8) -> T) -> Vec<T> {
        let mut ops = Vec::new();
        while ops.len() < MAX_OPS {
            let Some(code) = self.opcode() else { break };
            ops.push(decode(self, code));
        }
        ops
    }
    /// A method index: 0 or 1.
    fn method(&mut self) -> usize {
        (self.arg() & 1) as usize
    }
    fn hresult(&mut self) -> HRESULT {
        HRESULTS[self.arg() as usize % HRESULTS.len()]
    }
    fn cancel_seconds(&mut self) -> u32 {
        CANCEL_SECONDS[self.arg() as usize % CANCEL_SECONDS.len()]
    }
}

/// The `Finish_` mode a header byte says: bit 0, [`FinishMode::Strict`].
fn mode_of(header: u8) -> FinishMode {
    if header & 1 == 1 {
        FinishMode::Strict
    } else {
        FinishMode::Blocking
    }
}

/// Decodes a call-object sequence: the `Finish_` mode and the operations (see the module
/// documentation for the format).
pub fn call_ops(data: &[u8]) -> (FinishMode, Vec<ModelOp>) {
    let mut b = Bytes::new(data);
    let mode = mode_of(b.arg());
    let ops = b.ops(|b, code| match code % 9 {
        0 => ModelOp::Begin(b.method()),
        1 => {
            let hr = b.hresult();
            let len = b.arg() % 4;
            let outs = (0..len).map(|_| b.arg() as u32).collect();
            ModelOp::ServerComplete { hr, outs }
        }
        2 => ModelOp::Finish(b.method()),
        3 => ModelOp::Cancel(b.cancel_seconds()),
        4 => ModelOp::CancelTimeout,
        5 => ModelOp::TestCancel,
        6 => ModelOp::Wait {
            flags: b.flags(),
            timeout: b.timeout(),
        },
        7 => ModelOp::QueryInterface(iids()[b.arg() as usize % 8]),
        _ => ModelOp::Release,
    });
    (mode, ops)
}

/// Decodes an events/container/`CoWaitForMultipleHandles` sequence: the kinds of the events
/// and the operations (see the module documentation for the format).
pub fn world_ops(profile: WorldProfile, data: &[u8]) -> (Vec<EventClass>, Vec<ModelOp>) {
    let mut b = Bytes::new(data);
    let header = b.arg();
    let n = 1 + (header & 3) as usize;
    let kinds: Vec<EventClass> = (0..n)
        .map(|i| {
            if header & (4 << i) != 0 {
                EventClass::Auto
            } else {
                EventClass::ManualReset
            }
        })
        .collect();
    let ops = b.ops(|b, code| match code % profile.opcodes() {
        0 => ModelOp::EventSignal(b.arg() as usize % n),
        1 => ModelOp::EventReset(b.arg() as usize % n),
        2 => ModelOp::EventWait {
            event: b.arg() as usize % n,
            flags: b.flags(),
            timeout: b.timeout(),
        },
        3 => {
            let flags = b.flags();
            let timeout = b.timeout();
            let handles = match b.arg() {
                0xFF => None,
                0xFE => Some((0..=MAXIMUM_WAIT_OBJECTS).map(|i| i % n).collect()),
                h => Some((0..h % 5).map(|_| b.arg() as usize % n).collect()),
            };
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present: b.arg() & 1 == 0,
            }
        }
        4 => match b.arg() {
            0xFF => ModelOp::AddSynchronize(None),
            e => ModelOp::AddSynchronize(Some(e as usize % n)),
        },
        _ => ModelOp::WaitMultiple {
            flags: b.flags(),
            timeout: b.timeout(),
            out_present: b.arg() & 1 == 0,
        },
    });
    (kinds, ops)
}

/// Decodes an aggregation sequence for [`super::aggregation::check_aggregation`]: one header
/// byte (bit 0: [`FinishMode::Strict`]), then per operation an opcode byte (`% 9`) and its
/// arguments:
///
/// | opcode | operation | argument bytes |
/// |---|---|---|
/// | 0 | `Begin_m` | `m & 1` |
/// | 1 | server completes | `HRESULTS[b % 4]` |
/// | 2 | `Finish_m` | `m & 1` |
/// | 3 | `Cancel(s)` | `CANCEL_SECONDS[b % 4]` |
/// | 4 | `CancelTimeout` | — |
/// | 5 | `TestCancel()` | — |
/// | 6 | outer `Reset`/`Signal` fail | bit 0: `Reset`, bit 1: `Signal` |
/// | 7 | arm a hook | bit 0: in `Signal` (else before it), bit 1: `Finish_` method, bit 2: then `Begin_`, bit 3: its method |
/// | 8 | `Release()` | — |
pub fn agg_ops(data: &[u8]) -> (FinishMode, Vec<AggOp>) {
    let mut b = Bytes::new(data);
    let mode = mode_of(b.arg());
    let ops = b.ops(|b, code| match code % 9 {
        0 => AggOp::Begin(b.method()),
        1 => AggOp::ServerComplete(b.hresult()),
        2 => AggOp::Finish(b.method()),
        3 => AggOp::Cancel(b.cancel_seconds()),
        4 => AggOp::CancelTimeout,
        5 => AggOp::TestCancel,
        6 => {
            let a = b.arg();
            AggOp::OuterFails {
                reset: a & 1 != 0,
                signal: a & 2 != 0,
            }
        }
        7 => {
            let a = b.arg();
            AggOp::Arm(Hook {
                point: if a & 1 != 0 {
                    HookPoint::InSignal
                } else {
                    HookPoint::BeforeSignal
                },
                finish: ((a >> 1) & 1) as usize,
                then_begin: (a & 4 != 0).then_some(((a >> 3) & 1) as usize),
            })
        }
        _ => AggOp::Release,
    });
    (mode, ops)
}

/// Encodes an aggregation sequence so that [`agg_ops`] gives it back; `None` if it cannot
/// be (a value outside the tables, a method index above 1, more than [`MAX_OPS`]).
pub fn encode_agg_ops(mode: FinishMode, ops: &[AggOp]) -> Option<Vec<u8>> {
    if ops.len() > MAX_OPS {
        return None;
    }
    let m = |m: usize| (m < 2).then_some(m as u8);
    let mut out = vec![u8::from(mode == FinishMode::Strict)];
    for op in ops {
        match op {
            AggOp::Begin(x) => out.extend([0, m(*x)?]),
            AggOp::ServerComplete(hr) => out.extend([1, index_of(&HRESULTS, hr)?]),
            AggOp::Finish(x) => out.extend([2, m(*x)?]),
            AggOp::Cancel(s) => out.extend([3, index_of(&CANCEL_SECONDS, s)?]),
            AggOp::CancelTimeout => out.push(4),
            AggOp::TestCancel => out.push(5),
            AggOp::OuterFails { reset, signal } => {
                out.extend([6, u8::from(*reset) | (u8::from(*signal) << 1)])
            }
            AggOp::Arm(h) => {
                let mut a = u8::from(h.point == HookPoint::InSignal) | (m(h.finish)? << 1);
                if let Some(x) = h.then_begin {
                    a |= 4 | (m(x)? << 3);
                }
                out.extend([7, a]);
            }
            AggOp::Release => out.push(8),
        }
    }
    Some(out)
}

/// Decodes a hosted-server sequence for [`super::server_host::check_server_host`]: the
/// `Finish_` mode, whether the server abandons its remaining work at the end, and the
/// operations. One header byte (bit 0: [`FinishMode::Strict`]; bit 1: abandon), then per
/// operation an opcode byte (`% 9`) and its arguments:
///
/// | opcode | operation | argument bytes |
/// |---|---|---|
/// | 0 | `Begin_m` | bit 0: `m`, bit 1: the worker runs inside it |
/// | 1 | the worker runs one job | — |
/// | 2 | `Finish_m` | `m & 1` |
/// | 3 | `Cancel(s)` | `CANCEL_SECONDS[b % 4]` |
/// | 4 | `CancelTimeout` | — |
/// | 5 | `TestCancel()` | — |
/// | 6 | the server's `Begin_` fails | `b & 1` |
/// | 7 | `Release()` | — |
/// | 8 | the worker runs every job | — |
pub fn host_ops(data: &[u8]) -> (FinishMode, bool, Vec<HostOp>) {
    let mut b = Bytes::new(data);
    let header = b.arg();
    let mode = mode_of(header);
    let ops = b.ops(|b, code| match code % 9 {
        0 => {
            let a = b.arg();
            HostOp::Begin {
                method: (a & 1) as usize,
                preempted: a & 2 != 0,
            }
        }
        1 => HostOp::Work,
        2 => HostOp::Finish(b.method()),
        3 => HostOp::Cancel(b.cancel_seconds()),
        4 => HostOp::CancelTimeout,
        5 => HostOp::TestCancel,
        6 => HostOp::ServerBeginFails(b.arg() & 1 != 0),
        7 => HostOp::Release,
        _ => HostOp::WorkAll,
    });
    (mode, header & 2 != 0, ops)
}

/// Encodes a hosted-server sequence so that [`host_ops`] gives it back; `None` if it cannot
/// be (a value outside the tables, a method index above 1, more than [`MAX_OPS`]).
pub fn encode_host_ops(mode: FinishMode, abandon: bool, ops: &[HostOp]) -> Option<Vec<u8>> {
    if ops.len() > MAX_OPS {
        return None;
    }
    let m = |m: usize| (m < 2).then_some(m as u8);
    let mut out = vec![u8::from(mode == FinishMode::Strict) | (u8::from(abandon) << 1)];
    for op in ops {
        match op {
            HostOp::Begin { method, preempted } => {
                out.extend([0, m(*method)? | (u8::from(*preempted) << 1)])
            }
            HostOp::Work => out.push(1),
            HostOp::Finish(x) => out.extend([2, m(*x)?]),
            HostOp::Cancel(s) => out.extend([3, index_of(&CANCEL_SECONDS, s)?]),
            HostOp::CancelTimeout => out.push(4),
            HostOp::TestCancel => out.push(5),
            HostOp::ServerBeginFails(f) => out.extend([6, u8::from(*f)]),
            HostOp::Release => out.push(7),
            HostOp::WorkAll => out.push(8),
        }
    }
    Some(out)
}

fn index_of<T: PartialEq>(table: &[T], v: &T) -> Option<u8> {
    table.iter().position(|x| x == v).map(|i| i as u8)
}

/// Encodes a call-object sequence so that [`call_ops`] gives it back. `None` if an operation
/// is not one the decoder produces (a value outside the tables, an event operation, more than
/// [`MAX_OPS`] operations).
pub fn encode_call_ops(mode: FinishMode, ops: &[ModelOp]) -> Option<Vec<u8>> {
    if ops.len() > MAX_OPS {
        return None;
    }
    let mut out = vec![u8::from(mode == FinishMode::Strict)];
    for op in ops {
        match op {
            ModelOp::Begin(m) if *m < 2 => out.extend([0, *m as u8]),
            ModelOp::ServerComplete { hr, outs } if outs.len() < 4 => {
                out.extend([1, index_of(&HRESULTS, hr)?, outs.len() as u8]);
                for &v in outs {
                    out.push(u8::try_from(v).ok()?);
                }
            }
            ModelOp::Finish(m) if *m < 2 => out.extend([2, *m as u8]),
            ModelOp::Cancel(s) => out.extend([3, index_of(&CANCEL_SECONDS, s)?]),
            ModelOp::CancelTimeout => out.push(4),
            ModelOp::TestCancel => out.push(5),
            ModelOp::Wait { flags, timeout } => {
                out.extend([6, index_of(&FLAGS, flags)?, index_of(&TIMEOUTS, timeout)?])
            }
            ModelOp::QueryInterface(iid) => out.extend([7, index_of(&iids(), iid)?]),
            ModelOp::Release => out.push(8),
            _ => return None,
        }
    }
    Some(out)
}

/// Encodes an events/container sequence so that [`world_ops`] (with the same `profile`) gives
/// it back. `None` if it cannot be (1–4 events; values inside the tables; operations the
/// profile has; at most [`MAX_OPS`]).
pub fn encode_world_ops(
    profile: WorldProfile,
    kinds: &[EventClass],
    ops: &[ModelOp],
) -> Option<Vec<u8>> {
    let n = kinds.len();
    if !(1..=4).contains(&n) || ops.len() > MAX_OPS {
        return None;
    }
    let mut header = (n - 1) as u8;
    for (i, k) in kinds.iter().enumerate() {
        if *k == EventClass::Auto {
            header |= 4 << i;
        }
    }
    let mut out = vec![header];
    let ev = |e: usize| (e < n).then_some(e as u8);
    for op in ops {
        match op {
            ModelOp::EventSignal(e) => out.extend([0, ev(*e)?]),
            ModelOp::EventReset(e) => out.extend([1, ev(*e)?]),
            ModelOp::EventWait {
                event,
                flags,
                timeout,
            } => out.extend([
                2,
                ev(*event)?,
                index_of(&FLAGS, flags)?,
                index_of(&TIMEOUTS, timeout)?,
            ]),
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => {
                out.extend([3, index_of(&FLAGS, flags)?, index_of(&TIMEOUTS, timeout)?]);
                match handles {
                    None => out.push(0xFF),
                    Some(hs) if hs.len() == MAXIMUM_WAIT_OBJECTS + 1 => {
                        if hs.iter().enumerate().any(|(i, &h)| h != i % n) {
                            return None;
                        }
                        out.push(0xFE);
                    }
                    Some(hs) if hs.len() < 5 => {
                        out.push(hs.len() as u8);
                        for &h in hs {
                            out.push(ev(h)?);
                        }
                    }
                    Some(_) => return None,
                }
                out.push(u8::from(!index_present));
            }
            ModelOp::AddSynchronize(e) if profile == WorldProfile::Events => match e {
                None => out.extend([4, 0xFF]),
                Some(e) => out.extend([4, ev(*e)?]),
            },
            ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            } if profile == WorldProfile::Events => out.extend([
                5,
                index_of(&FLAGS, flags)?,
                index_of(&TIMEOUTS, timeout)?,
                u8::from(!out_present),
            ]),
            _ => return None,
        }
    }
    Some(out)
}
