//! `comasync explore`: the explorer's web server. One page (`explore.html`, embedded in the
//! binary: nothing is fetched from the network), the guided tour's text (`/api/tour`) and one
//! JSON endpoint, `/api/view?s=CHOICES`,
//! which replays the schedule `CHOICES` (comma-separated [`Choice::code`]s) with
//! [`Explorer::view`]. The page is the scheduler: it keeps the schedule and asks for its view
//! after every click. Binds 127.0.0.1 only.

use std::fmt::Write as _;

use comasync::check::{Choice, Explorer, Res};

/// The page, with its script and style inline.
const PAGE: &str = include_str!("explore.html");

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn codes(s: &[Choice]) -> String {
    s.iter().map(Choice::code).collect::<Vec<_>>().join(",")
}

/// A result: the text, and its `HRESULT`'s name, value and message when it has one.
fn result_json(line: usize, r: &Res) -> String {
    let hr = r.count.is_none().then_some(r.hr).flatten();
    let (name, hex, message) = match hr {
        Some(h) => (
            h.name_or_hex(),
            format!("0x{:08X}", h.as_u32()),
            h.message().unwrap_or("").to_string(),
        ),
        None => (String::new(), String::new(), String::new()),
    };
    format!(
        "{{\"line\":{line},\"result\":{},\"hr\":{},\"hex\":{},\"message\":{}}}",
        js(&r.to_string()),
        js(&name),
        js(&hex),
        js(&message)
    )
}

/// The view of `schedule` as JSON.
pub(crate) fn view_json(x: &Explorer, name: &str, schedule: &[Choice]) -> String {
    let v = x.view(schedule);
    let statements: Vec<String> = x
        .statements()
        .iter()
        .map(|(line, actor, text, target)| {
            format!(
                "{{\"line\":{line},\"actor\":{},\"text\":{},\"target\":{}}}",
                js(actor),
                js(text),
                target.as_deref().map_or("null".into(), js)
            )
        })
        .collect();
    let taken: Vec<String> = v
        .taken
        .iter()
        .map(|t| {
            let results: Vec<String> = t.results.iter().map(|(l, r)| result_json(*l, r)).collect();
            format!(
                "{{\"choice\":{},\"actor\":{},\"line\":{},\"text\":{},\"expire\":{},\"results\":[{}]}}",
                js(&t.choice.code()),
                js(&t.actor),
                t.line,
                js(&t.text),
                matches!(t.choice, Choice::Expire(_)),
                results.join(",")
            )
        })
        .collect();
    let next: Vec<String> = v
        .next
        .iter()
        .map(|n| {
            format!(
                "{{\"choice\":{},\"actor\":{},\"line\":{},\"text\":{},\"expire\":{}}}",
                js(&n.choice.code()),
                js(&n.actor),
                n.line,
                js(&n.text),
                matches!(n.choice, Choice::Expire(_))
            )
        })
        .collect();
    let calls: Vec<String> = v
        .calls
        .iter()
        .map(|(var, st)| {
            format!(
                "{{\"var\":{},\"state\":{}}}",
                js(var),
                js(&format!("{st:?}"))
            )
        })
        .collect();
    let others: Vec<String> = v
        .others
        .iter()
        .map(|o| {
            format!(
                "{{\"line\":{},\"text\":{},\"result\":{},\"schedule\":{}}}",
                o.line,
                js(&o.text),
                js(&o.result),
                js(&codes(&o.schedule))
            )
        })
        .collect();
    let stuck: Vec<String> = v.stuck.iter().map(|s| js(s)).collect();
    format!(
        "{{\"name\":{},\"written\":{},\"schedule\":{},\"statements\":[{}],\"taken\":[{}],\"next\":[{}],\"calls\":[{}],\"done\":{},\"stuck\":[{}],\"others\":[{}]}}",
        js(name),
        js(&codes(&x.written())),
        js(&codes(&v.taken.iter().map(|t| t.choice).collect::<Vec<_>>())),
        statements.join(","),
        taken.join(","),
        next.join(","),
        calls.join(","),
        v.done,
        stuck.join(","),
        others.join(",")
    )
}

/// The schedule in a `?s=r0,r1` query.
fn schedule_of(url: &str) -> Vec<Choice> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("s="))
        .unwrap_or("")
        .split(&[',', '+'][..])
        .map(|c| c.replace("%2C", ""))
        .filter_map(|c| Choice::parse(&c))
        .collect()
}

/// Serves the explorer on 127.0.0.1:`port` until the process ends; `ready` is called with
/// the address once listening.
pub(crate) fn serve(
    x: &Explorer,
    name: &str,
    port: u16,
    ready: impl FnOnce(&str),
) -> Result<(), String> {
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or_else(|| format!("127.0.0.1:{port}"), |a| a.to_string());
    // The guided tour, shown above the scheduler (it runs the real objects once, here).
    let mut tour = Vec::new();
    let tour = match comasync::tour::run(&mut tour) {
        Ok(()) => String::from_utf8_lossy(&tour).into_owned(),
        Err(e) => format!("(the tour could not run: {e})"),
    };
    ready(&format!("http://{addr}/"));
    for request in server.incoming_requests() {
        let url = request.url().to_string();
        let (body, kind, status) = if url == "/" || url.starts_with("/?") {
            (PAGE.to_string(), "text/html; charset=utf-8", 200)
        } else if url == "/api/tour" {
            (tour.clone(), "text/plain; charset=utf-8", 200)
        } else if url.starts_with("/api/view") {
            (
                view_json(x, name, &schedule_of(&url)),
                "application/json",
                200,
            )
        } else {
            ("not found".to_string(), "text/plain", 404)
        };
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
            .map_err(|()| "bad header".to_string())?;
        let response = tiny_http::Response::from_string(body)
            .with_header(header)
            .with_status_code(status);
        // A client that went away is not the server's problem.
        let _ = request.respond(response);
    }
    Ok(())
}
