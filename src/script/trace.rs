//! The timeline of a scenario run: every COM-visible event (`QueryInterface`, `AddRef`/
//! `Release`, `CreateCall`, `Begin_`, the server's completion and the `Signal` it causes,
//! `Wait` and its result, `Finish_`, `Cancel`/`TestCancel`, event and container calls), each
//! with the script line, the actor, the thread it ran on and its apartment.
//!
//! Events are recorded in script order (a started operation's return is recorded at its
//! `join`), so the trace of a script is the same on every run.

use std::fmt;

/// What a participant of the timeline is; the order here is the order of a diagram's columns.
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
    /// A server object (and the actor of the same name, which completes its calls).
    Server,
}

/// A column of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// Identifier (a script name, or `<call>_ISync` for a call's `ISynchronize`).
    pub id: String,
    /// What is shown for it.
    pub label: String,
    /// What it is.
    pub role: Role,
}

/// The kind of an event.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The script line that caused it.
    pub line: usize,
    /// The actor of that line.
    pub actor: String,
    /// The name of the thread it ran on.
    pub thread: String,
    /// The thread's apartment (always `"MTA"` for now).
    pub apartment: &'static str,
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
        });
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
