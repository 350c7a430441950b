//! A [`Trace`] as a Mermaid `sequenceDiagram`: one column per participant — the client
//! actors, then call objects, their `ISynchronize`s, events, containers, and the servers —
//! one arrow per call and return, notes for blocked threads and dropped results. The
//! participants of one apartment are drawn together in a `box STA#n` (or `MTA#n`) … `end`;
//! a script that enters no apartment draws no box.

use super::trace::{EventKind, Trace};

/// Makes `text` safe inside a Mermaid message or label (`;` ends a statement, `#` starts an
/// entity code).
fn escape(text: &str) -> String {
    text.replace(';', ",").replace('#', "no. ")
}

/// Renders `trace` as Mermaid source, ending with a newline.
///
/// ```
/// use comasync::script::trace::{Event, EventKind, Role, Trace};
/// let mut t = Trace::default();
/// t.participant("client", "client", Role::Client);
/// t.participant("call", "call (call object)", Role::Call);
/// t.events.push(Event {
///     line: 1, actor: "client".into(), thread: "client".into(), apartment: "MTA#1".into(),
///     kind: EventKind::Call, from: "client".into(), to: "call".into(), label: "Begin_Read(5)".into(),
/// });
/// let m = comasync::script::mermaid::render(&t);
/// assert!(m.starts_with("sequenceDiagram\n"));
/// assert!(m.contains("client->>call: Begin_Read(5)"));
/// ```
pub fn render(trace: &Trace) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let mut parts: Vec<_> = trace.participants.iter().enumerate().collect();
    parts.sort_by_key(|(i, p)| (p.role, *i));
    // Apartments in the order of their first participant; each one's participants together.
    let mut boxes: Vec<&str> = Vec::new();
    for (_, p) in &parts {
        if let Some(a) = p.apartment.as_deref() {
            if !boxes.contains(&a) {
                boxes.push(a);
            }
        }
    }
    let mut ordered: Vec<(Option<&str>, &crate::script::trace::Participant)> = Vec::new();
    for b in &boxes {
        ordered.extend(
            parts
                .iter()
                .filter(|(_, p)| p.apartment.as_deref() == Some(*b))
                .map(|(_, p)| (Some(*b), *p)),
        );
    }
    ordered.extend(
        parts
            .iter()
            .filter(|(_, p)| p.apartment.is_none())
            .map(|(_, p)| (None, *p)),
    );
    let mut open: Option<&str> = None;
    for (apt, p) in ordered {
        if apt != open {
            if open.is_some() {
                out.push_str("    end\n");
            }
            if let Some(a) = apt {
                out.push_str(&format!("    box {a}\n"));
            }
            open = apt;
        }
        let indent = if open.is_some() { "    " } else { "" };
        out.push_str(indent);
        if p.label == p.id {
            out.push_str(&format!("    participant {}\n", p.id));
        } else {
            out.push_str(&format!(
                "    participant {} as {}\n",
                p.id,
                escape(&p.label)
            ));
        }
    }
    if open.is_some() {
        out.push_str("    end\n");
    }
    for e in &trace.events {
        let label = escape(&e.label);
        match e.kind {
            EventKind::Call => out.push_str(&format!("    {}->>{}: {label}\n", e.from, e.to)),
            EventKind::Return => out.push_str(&format!("    {}-->>{}: {label}\n", e.from, e.to)),
            EventKind::Note => out.push_str(&format!("    Note over {}: {label}\n", e.from)),
            EventKind::Create => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::script::trace::{Role, Trace};

    #[test]
    fn the_participants_of_one_apartment_are_drawn_in_one_box() {
        let mut t = Trace::default();
        t.participant("client", "client", Role::Client);
        t.participant("sta", "sta", Role::Client);
        t.participant("p", "p (proxy to s)", Role::Proxy);
        t.participant("s", "s (SimpleStream)", Role::Server);
        t.participant("e", "e", Role::Event);
        t.place("sta", "STA#1");
        t.place("s", "STA#1");
        t.place("client", "MTA#1");
        t.place("p", "MTA#1");
        let m = render(&t);
        let expected = "sequenceDiagram\n    box MTA#1\n        participant client\n        \
             participant p as p (proxy to s)\n    end\n    box STA#1\n        participant sta\n        \
             participant s as s (SimpleStream)\n    end\n    participant e\n";
        assert_eq!(m, expected);
    }

    #[test]
    fn a_trace_without_apartments_draws_no_box() {
        let mut t = Trace::default();
        t.participant("client", "client", Role::Client);
        assert_eq!(render(&t), "sequenceDiagram\n    participant client\n");
    }
}
