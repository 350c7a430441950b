//! One modelled operation applied to a [`World`]: the model objects' answers, the
//! bookkeeping the checker's invariants need (references, what each server produced), and
//! the invariants checked on the spot.

use super::*;
use crate::hresult::S_OK;
use crate::script::model_check::{
    begin, model_object_accessors, snapshot, write_back, Made, ModelObject,
};

impl World {
    /// Applies `op` (actor `a`'s step `step`); the state changes only if it does not block.
    pub(super) fn apply(
        &mut self,
        p: &Program,
        a: usize,
        step: usize,
        bind: Option<&str>,
        op: &Checked,
        fx: &mut Effect,
    ) -> Run {
        let s = &p.steps[step];
        let written = || as_written(s);
        let written_ok = s.expect.as_ref().is_none_or(|e| e.hr == S_OK);
        match op {
            Checked::Creation(creation) => {
                if let Some(made) = creation.made(written_ok) {
                    self.new_obj(p, bind, Obj::from_made(made));
                }
                Run::Done(written())
            }
            Checked::QueryInterface { target, iid } => {
                let k = self.obj(p, target).expect("bound");
                let res = match &self.objs[k].0 {
                    Obj::Call(c) => outcome_res(&c.model.query_interface(iid)),
                    _ => written(),
                };
                let ok = res.hr.map_or(written_ok, |hr| hr == S_OK);
                if ok {
                    self.objs[k].1 += 1;
                    if let Some(v) = bind.and_then(|b| p.var(b)) {
                        self.vars[v] = Some(k);
                    }
                }
                Run::Done(res)
            }
            // Aggregated call objects (an `Outer`) are not followed by the checker.
            Checked::CreateCall {
                factory,
                iid,
                outer,
            } => {
                let k = self.obj(p, factory).expect("bound");
                if written_ok {
                    let obj = match &self.objs[k].0 {
                        Obj::Server(mode) if outer.is_none() => Obj::Call(Box::new(CallObj {
                            model: CallModel::with_mode(*iid, *mode),
                            queued: VecDeque::new(),
                            produced: Vec::new(),
                        })),
                        _ => Obj::Untracked,
                    };
                    self.new_obj(p, bind, obj);
                }
                Run::Done(written())
            }
            Checked::OuterCount { .. } => Run::Done(written()),
            Checked::Release { target } => {
                let k = self.obj(p, target).expect("bound");
                let refs = &mut self.objs[k].1;
                if *refs == 0 {
                    fx.violations.push(format!(
                        "line {}: Release of `{target}`, which has no references left",
                        s.line
                    ));
                    return Run::Done(count(0));
                }
                *refs -= 1;
                let left = *refs;
                if left == 0 {
                    self.last_release(k, target, s.line, fx);
                    // A container's last release releases what it holds.
                    if let Obj::Container(_, held) = &self.objs[k].0 {
                        let held: Vec<usize> = held.iter().filter_map(|&v| self.vars[v]).collect();
                        for h in held {
                            self.objs[h].1 = self.objs[h].1.saturating_sub(1);
                            if self.objs[h].1 == 0 {
                                self.last_release(h, target, s.line, fx);
                            }
                        }
                    }
                }
                Run::Done(count(left))
            }
            Checked::Begin {
                call,
                method,
                shared,
                ..
            } => {
                for name in shared {
                    if let Some(k) = self.obj(p, name) {
                        self.objs[k].0 = Obj::Untracked;
                    }
                }
                let k = self.obj(p, call).expect("bound");
                let m = p.methods[method];
                let Some(c) = self.call_mut(k) else {
                    return Run::Done(written());
                };
                Run::Done(outcome_res(&begin(&mut c.model, &mut c.queued, m)))
            }
            Checked::Finish { call, method } => {
                let k = self.obj(p, call).expect("bound");
                let m = p.methods[method];
                let Some(c) = self.call_mut(k) else {
                    return Run::Done(written());
                };
                let current = c.model.call_number();
                match c.model.finish(m) {
                    ModelOutcome::Blocks => Run::Blocks,
                    ModelOutcome::Finished { hr, outs } => {
                        let token = outs.first().map(|&t| t as usize);
                        let produced = token.and_then(|t| c.produced.get_mut(t));
                        let mut outs = Vec::new();
                        match produced {
                            Some(r) if r.hr == hr => {
                                if r.taken {
                                    fx.violations.push(format!(
                                        "line {}: {} returned a result a Finish_ had already taken (delivered twice)",
                                        s.line, s.text
                                    ));
                                }
                                if r.call != current {
                                    fx.violations.push(format!(
                                        "line {}: {} returned call {}'s result during call {current} (delivered to the wrong call)",
                                        s.line, s.text, r.call
                                    ));
                                }
                                r.taken = true;
                                if let Some(e) = &p.steps[r.step].expect {
                                    outs = e.values.clone();
                                }
                            }
                            _ => fx.violations.push(format!(
                                "line {}: {} returned {}, which no server produced",
                                s.line,
                                s.text,
                                hr.name_or_hex()
                            )),
                        }
                        Run::Done(Res {
                            outs,
                            ..Res::hr(hr)
                        })
                    }
                    o => Run::Done(outcome_res(&o)),
                }
            }
            Checked::Wait {
                target,
                flags,
                timeout,
            } => {
                let k = self.obj(p, target).expect("bound");
                let Some(o) = self.objs[k].0.wait(*flags, *timeout) else {
                    return Run::Done(written());
                };
                if o.blocks() {
                    Run::Blocks
                } else {
                    Run::Done(outcome_res(&o))
                }
            }
            Checked::Signal { target } | Checked::Reset { target } => {
                let k = self.obj(p, target).expect("bound");
                let signal = matches!(op, Checked::Signal { .. });
                match self.objs[k].0.signal_or_reset(signal) {
                    Some(o) => Run::Done(outcome_res(&o)),
                    None => Run::Done(written()),
                }
            }
            Checked::Cancel { call, seconds } => {
                let k = self.obj(p, call).expect("bound");
                let Some(c) = self.call_mut(k) else {
                    return Run::Done(written());
                };
                match c.model.cancel(*seconds) {
                    ModelOutcome::CancelInFlight => Run::InFlight,
                    o => Run::Done(outcome_res(&o)),
                }
            }
            Checked::TestCancel { call } => {
                let k = self.obj(p, call).expect("bound");
                match self.call_mut(k) {
                    Some(c) => Run::Done(outcome_res(&c.model.test_cancel())),
                    None => Run::Done(written()),
                }
            }
            Checked::AddSynchronize {
                container,
                sync: None,
            } => {
                let k = self.obj(p, container).expect("bound");
                let n = self.objs.len();
                match &mut self.objs[k].0 {
                    Obj::Container(model, _) => {
                        Run::Done(outcome_res(&model.add_synchronize(None, n)))
                    }
                    _ => Run::Done(written()),
                }
            }
            Checked::AddSynchronize {
                container,
                sync: Some(sync),
            } => {
                let (k, x) = (
                    self.obj(p, container).expect("bound"),
                    self.obj(p, sync).expect("bound"),
                );
                let n = self.objs.len();
                if !self.objs[x].0.waitable() {
                    self.objs[k].0 = Obj::Untracked;
                    return Run::Done(written());
                }
                let Obj::Container(model, names) = &mut self.objs[k].0 else {
                    return Run::Done(written());
                };
                let o = model.add_synchronize(Some(x), n);
                if o == ModelOutcome::Returns(S_OK) {
                    names.push(p.var(sync).expect("bound"));
                    // The container holds a reference to what it waits on.
                    self.objs[x].1 += 1;
                }
                Run::Done(outcome_res(&o))
            }
            Checked::WaitMultiple {
                container,
                flags,
                timeout,
                out,
            } => {
                let k = self.obj(p, container).expect("bound");
                let Obj::Container(model, names) = &self.objs[k].0 else {
                    return Run::Done(written());
                };
                let (model, names) = (model.clone(), names.clone());
                let Some(mut events) = snapshot(&self.objs, |(o, _)| o, model.objects()) else {
                    return Run::Done(written());
                };
                let o = model.wait_multiple(&mut events, *flags, *timeout, *out);
                if o.blocks() {
                    return Run::Blocks;
                }
                write_back(&mut self.objs, |(o, _)| o, events);
                let mut res = outcome_res(&o);
                if let ModelOutcome::WaitMultiple {
                    position: Some(i), ..
                } = o
                {
                    let var = p.vars.iter().find(|(_, &v)| Some(&v) == names.get(i));
                    res.outs = var
                        .map(|(n, _)| Value::Name(n.clone()))
                        .into_iter()
                        .collect();
                }
                Run::Done(res)
            }
            Checked::CoWait {
                flags,
                timeout,
                handles,
                index,
            } => {
                let ids: Option<Vec<usize>> = handles
                    .as_ref()
                    .map(|hs| hs.iter().map(|h| self.obj(p, h).expect("bound")).collect());
                let Some(mut events) =
                    snapshot(&self.objs, |(o, _)| o, ids.as_deref().unwrap_or_default())
                else {
                    return Run::Done(written());
                };
                let o = co_wait_for_multiple_handles(
                    &mut events,
                    *flags,
                    *timeout,
                    ids.as_deref(),
                    *index,
                );
                if o.blocks() {
                    return Run::Blocks;
                }
                write_back(&mut self.objs, |(o, _)| o, events);
                let mut res = outcome_res(&o);
                if let ModelOutcome::CoWait { index: Some(i), .. } = o {
                    res.outs = vec![Value::Num(i.into())];
                }
                Run::Done(res)
            }
            Checked::Complete { call } | Checked::Fail { call, .. } => {
                let k = self.obj(p, call).expect("bound");
                let Some(c) = self.call_mut(k) else {
                    return Run::Done(written());
                };
                // The server thread waits until a call reaches it.
                let Some(n) = c.queued.pop_front() else {
                    return Run::Blocks;
                };
                let (hr, outs) = match (op, &s.expect) {
                    (Checked::Fail { hr, .. }, _) => (*hr, Vec::new()),
                    (_, Some(e)) => (e.hr, e.values.clone()),
                    (_, None) => (S_OK, Vec::new()),
                };
                let mut res = Res {
                    outs,
                    ..Res::hr(hr)
                };
                if n != c.model.call_number() {
                    // An earlier call's late result: not an operation of the model; dropped.
                    res.note = Some("dropped: late");
                    return Run::Done(res);
                }
                let token = c.produced.len() as u32;
                c.produced.push(Produced {
                    call: n,
                    hr,
                    step,
                    taken: false,
                });
                let o = c.model.server_complete(hr, &[token]);
                res.note = Some(match o {
                    ModelOutcome::Dropped => "dropped",
                    _ => "delivered",
                });
                if let ModelOutcome::Delivered {
                    cancel_returns: Some(cancel),
                } = o
                {
                    // The actor whose Cancel waited on this call returns now.
                    let waiting = (0..p.actors.len()).find(|&b| {
                        b != a && self.actors[b].cancel.is_some_and(|st| {
                            matches!(&p.ops[st], Some(COp::Model(Checked::Cancel { call: v, .. }))
                                    if self.obj(p, v) == Some(k))
                        })
                    });
                    if let Some(b) = waiting {
                        let st = self.actors[b].cancel.take().expect("in flight");
                        self.actors[b].pc += 1;
                        fx.results.push((p.report_at[st], Res::hr(cancel)));
                    }
                }
                Run::Done(res)
            }
            // Scripts with apartment operations are not explored (`check_source_with`).
            Checked::CoInitializeEx { .. }
            | Checked::CoUninitialize
            | Checked::Marshal { .. }
            | Checked::Unmarshal { .. }
            | Checked::Pump
            | Checked::SyncCall { .. }
            | Checked::CoTestCancel
            | Checked::Security(_) => Run::Done(written()),
            Checked::ServerTestCancel { call } => {
                let k = self.obj(p, call).expect("bound");
                let Some(c) = self.call_mut(k) else {
                    return Run::Done(written());
                };
                match c.queued.front() {
                    None => Run::Blocks,
                    // The server holds its own reference: not the released client side's
                    // answer.
                    Some(_) if c.model.state() == CallState::Gone => Run::Done(written()),
                    Some(&n) if n == c.model.call_number() => {
                        Run::Done(outcome_res(&c.model.test_cancel()))
                    }
                    // A call the client moved on from while the server still had it was
                    // cancelled locally.
                    Some(_) => Run::Done(Res::hr(crate::hresult::RPC_E_CALL_CANCELED)),
                }
            }
        }
    }

    /// The last reference to object `k` went (by `Release target` at `line`).
    fn last_release(&mut self, k: usize, target: &str, line: usize, fx: &mut Effect) {
        if let Some(c) = self.call_mut(k) {
            c.model.release();
            if c.model.state() != CallState::Gone {
                fx.violations.push(format!(
                    "line {line}: a call object is still alive ({:?}) after its last Release (`{target}`)",
                    c.model.state()
                ));
            }
        }
    }
}

impl ModelObject for Obj {
    fn from_made(made: Made) -> Self {
        match made {
            Made::Server(mode) => Obj::Server(mode),
            Made::Event(e) => Obj::Event(e),
            Made::Container(k) => Obj::Container(k, Vec::new()),
            // Aggregated call objects (an `Outer`) are not followed by the checker.
            Made::Untracked | Made::Outer => Obj::Untracked,
        }
    }

    model_object_accessors!(Obj);
}
