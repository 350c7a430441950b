//! The timeline of a scenario run: every COM-visible event (`QueryInterface`, `AddRef`/
//! `Release`, `CreateCall`, `Begin_`, the server's completion and the `Signal` it causes,
//! `Wait` and its result, `Finish_`, `Cancel`/`TestCancel`, event and container calls), each
//! with the script line, the actor, the thread it ran on and its apartment (`STA#n`, `MTA#n`,
//! numbered per run in the order first met, or `no apartment`). Calls an STA's thread
//! dispatched while it waited or pumped are noted on that actor (`dispatched by ...`).
//!
//! Events are recorded in script order (a started operation's return is recorded at its
//! `join`), so the trace of a script is the same on every run.

use std::fmt;

/// What a participant of the timeline is; the order here is the order of a diagram's columns.
///
/// ```
/// use comasync::script::trace::{Role, Trace};
///
/// assert!(Role::Client < Role::Call && Role::Call < Role::Server); // column order
/// let mut trace = Trace::default();
/// trace.participant("server", "server", Role::Client); // an actor...
/// trace.participant("server", "server (SimpleStream)", Role::Server); // ...that is a server object
/// assert_eq!(trace.participants.len(), 1);
/// assert_eq!(trace.participants[0].role, Role::Server);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A client actor (a named thread of the script).
    Client,
    /// A call object.
    Call,
    /// A call object's `ISynchronize` (its aggregated manual-reset event).
    CallSync,
    /// An event object (`ManualResetEvent`, `StdEvent`).
    Event,
    /// A `SynchronizeContainer`.
    Container,
    /// A proxy (`Unmarshal` in another apartment).
    Proxy,
    /// A server object (and the actor of the same name, which completes its calls).
    Server,
}

/// A column of the timeline.
///
/// ```
/// use comasync::script::{run_source, RunOptions};
/// use comasync::script::trace::Role;
///
/// let script = "s = SimpleStream \"hi\"\nclient: f = QueryInterface s ICallFactory -> S_OK\n";
/// let trace = run_source("qi.cas", script, &RunOptions::default(), &mut std::io::sink())?;
/// let s = trace.participants.iter().find(|p| p.id == "s").unwrap();
/// assert_eq!((s.label.as_str(), s.role), ("s (SimpleStream)", Role::Server));
/// # Ok::<(), comasync::script::ScriptError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// Identifier (a script name, or `<call>_ISync` for a call's `ISynchronize`).
    pub id: String,
    /// What is shown for it.
    pub label: String,
    /// What it is.
    pub role: Role,
    /// The apartment it belongs to, if the script put it in one: an actor's first apartment,
    /// an object's (the apartment it was marshaled from), a proxy's (the one it was
    /// unmarshaled in). A diagram draws a box around each apartment's participants.
    pub apartment: Option<String>,
}

/// What an event's apartment says for a thread in no apartment.
pub const NO_APARTMENT: &str = "no apartment";

/// The kind of an event.
///
/// ```
/// use comasync::script::trace::{Event, EventKind};
///
/// let call = Event {
///     line: 4, actor: "client".into(), thread: "client".into(), apartment: "MTA#1".into(),
///     kind: EventKind::Call, from: "client".into(), to: "call".into(), label: "Begin_Read(2)".into(),
/// };
/// let ret = Event { kind: EventKind::Return, from: "call".into(), to: "client".into(), label: "S_OK".into(), ..call.clone() };
/// assert!(call.to_string().ends_with("client -> call: Begin_Read(2)"));
/// assert!(ret.to_string().ends_with("call --> client: S_OK"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A call from `from` to `to`.
    Call,
    /// The return of a call (`from` is the callee).
    Return,
    /// An object was created (no arrow in diagrams).
    Create,
    /// A remark about `from` (a blocked thread, a dropped late result).
    Note,
}

/// One event of the timeline.
///
/// ```
/// use comasync::script::trace::{Event, EventKind};
///
/// let event = Event {
///     line: 5,
///     actor: "server".into(),
///     thread: "server".into(),
///     apartment: "STA#1".into(),
///     kind: EventKind::Call,
///     from: "call".into(),
///     to: "call_ISync".into(),
///     label: "Signal()".into(),
/// };
/// assert_eq!(event.to_string(), "server [thread server, STA#1]: call -> call_ISync: Signal()");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The script line that caused it.
    pub line: usize,
    /// The actor of that line.
    pub actor: String,
    /// The name of the thread it ran on.
    pub thread: String,
    /// The thread's apartment when the event happened: `STA#n` or `MTA#n` (numbered in the
    /// order the run first met them), or [`NO_APARTMENT`].
    pub apartment: String,
    /// What kind of event.
    pub kind: EventKind,
    /// The caller (or the participant a note is about).
    pub from: String,
    /// The callee (equal to `from` for notes).
    pub to: String,
    /// What happened: `Begin_Read(5)`, `S_OK "hello"`, `Signal()`, ...
    pub label: String,
}

/// A whole run's timeline.
///
/// ```
/// use comasync::script::{run_source, RunOptions};
///
/// let script = "s = SimpleStream \"hi\"
/// client: f = QueryInterface s ICallFactory -> S_OK
/// client: call = CreateCall f AsyncISimpleStream -> S_OK
/// client: Begin_Read call 2 -> S_OK
/// server: Complete call -> S_OK \"hi\"
/// ";
/// let trace = run_source("read.cas", script, &RunOptions::default(), &mut std::io::sink())?;
/// let begin = trace.events_of(4).next().unwrap();
/// assert_eq!(begin.to_string(), "client [thread client, no apartment]: client -> call: Begin_Read(2)");
/// // The server's completion signals the call's ISynchronize.
/// assert!(trace.events_of(5).any(|e| e.to == "call_ISync" && e.label == "Signal()"));
/// # Ok::<(), comasync::script::ScriptError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The participants, in order of first appearance.
    pub participants: Vec<Participant>,
    /// The events, in script order.
    pub events: Vec<Event>,
}

impl Trace {
    /// Adds a participant, or — if `id` exists — raises its role to `role` if that is an
    /// object role (an actor named like a server object becomes that server).
    pub fn participant(&mut self, id: &str, label: &str, role: Role) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == id) {
            if p.role == Role::Client && role != Role::Client {
                p.role = role;
                p.label = label.to_string();
            }
            return;
        }
        self.participants.push(Participant {
            id: id.to_string(),
            label: label.to_string(),
            role,
            apartment: None,
        });
    }

    /// Puts participant `id` in `apartment`, unless it is in one already (the first
    /// apartment it was seen in stays its box).
    ///
    /// ```
    /// use comasync::script::trace::{Role, Trace};
    ///
    /// let mut trace = Trace::default();
    /// trace.participant("sta", "sta", Role::Client);
    /// trace.place("sta", "STA#1");
    /// trace.place("sta", "MTA#1"); // later apartments do not move it
    /// assert_eq!(trace.participants[0].apartment.as_deref(), Some("STA#1"));
    /// ```
    pub fn place(&mut self, id: &str, apartment: &str) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == id) {
            if p.apartment.is_none() {
                p.apartment = Some(apartment.to_string());
            }
        }
    }

    /// The events of script line `line`.
    pub fn events_of(&self, line: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.line == line)
    }
}

impl fmt::Display for Event {
    /// `client [thread client, MTA]: client -> call: Begin_Read(5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [thread {}, {}]: ",
            self.actor, self.thread, self.apartment
        )?;
        match self.kind {
            EventKind::Call => write!(f, "{} -> {}: {}", self.from, self.to, self.label),
            EventKind::Return => write!(f, "{} --> {}: {}", self.from, self.to, self.label),
            EventKind::Create => write!(f, "{} creates {}: {}", self.from, self.to, self.label),
            EventKind::Note => write!(f, "note {}: {}", self.from, self.label),
        }
    }
}

impl fmt::Display for Trace {
    /// One event per line, prefixed with its script line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.events {
            writeln!(f, "{:>4}  {e}", e.line)?;
        }
        Ok(())
    }
}
