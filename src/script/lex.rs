//! The scenario tokenizer: one line → [`Tok`]s (words, string literals, `:`, `=`, `->`),
//! and the small readers for numbers, timeouts and `COWAIT_*` flags.
//!
//! Invariants: `#` outside a string ends the line; a string literal is bytes, with the escapes
//! `\"`, `\\`, `\n` and `\xNN` only; every error names the line.

use super::parse::SyntaxError;
use super::value::quote;
use crate::sync::{
    COWAIT_ALERTABLE, COWAIT_DEFAULT, COWAIT_DISPATCH_CALLS, COWAIT_DISPATCH_WINDOW_MESSAGES,
    COWAIT_INPUTAVAILABLE, COWAIT_WAITALL,
};

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    Str(Vec<u8>),
    Colon,
    Eq,
    Arrow,
}

impl Tok {
    /// The token as written (strings quoted).
    pub(crate) fn show(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => quote(s),
            Tok::Colon => ":".into(),
            Tok::Eq => "=".into(),
            Tok::Arrow => "->".into(),
        }
    }
}

/// Splits one line (number `n`) into tokens.
pub(crate) fn tokenize(line: &str, n: usize) -> Result<Vec<Tok>, SyntaxError> {
    let err = |message: String| SyntaxError { line: n, message };
    let mut toks = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => break,
            b' ' | b'\t' | b'\r' => i += 1,
            b':' => {
                toks.push(Tok::Colon);
                i += 1;
            }
            b'=' => {
                toks.push(Tok::Eq);
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                toks.push(Tok::Arrow);
                i += 2;
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match b.get(i) {
                        None => {
                            return Err(err("unterminated string: expected a closing `\"`".into()))
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match b.get(i + 1) {
                                Some(b'"') => s.push(b'"'),
                                Some(b'\\') => s.push(b'\\'),
                                Some(b'n') => s.push(b'\n'),
                                Some(b'x') => {
                                    let hex = line.get(i + 2..i + 4).unwrap_or("");
                                    let v = u8::from_str_radix(hex, 16).map_err(|_| {
                                        err("expected two hex digits after `\\x` in a string"
                                            .into())
                                    })?;
                                    s.push(v);
                                    i += 2;
                                }
                                _ => return Err(err(
                                    "unknown escape in a string: expected \\\" \\\\ \\n or \\xNN"
                                        .into(),
                                )),
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b'\r' | b':' | b'=' | b'"' | b'#')
                {
                    if b[i] == b'-' && b.get(i + 1) == Some(&b'>') {
                        break;
                    }
                    i += 1;
                }
                toks.push(Tok::Word(line[start..i].to_string()));
            }
        }
    }
    Ok(toks)
}

/// Whether `s` is a name: a letter or `_`, then letters, digits and `_`.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads a number: decimal, `0x` hex, or `INFINITE` when `infinite` is given.
pub(crate) fn number(s: &str, infinite: Option<u32>) -> Option<u32> {
    if let Some(v) = infinite {
        if s.eq_ignore_ascii_case("INFINITE") {
            return Some(v);
        }
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `COWAIT_*` names joined with `|`, or a number.
pub(crate) fn cowait_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for part in s.split('|') {
        flags |= match part {
            "COWAIT_DEFAULT" => COWAIT_DEFAULT,
            "COWAIT_WAITALL" => COWAIT_WAITALL,
            "COWAIT_ALERTABLE" => COWAIT_ALERTABLE,
            "COWAIT_INPUTAVAILABLE" => COWAIT_INPUTAVAILABLE,
            "COWAIT_DISPATCH_CALLS" => COWAIT_DISPATCH_CALLS,
            "COWAIT_DISPATCH_WINDOW_MESSAGES" => COWAIT_DISPATCH_WINDOW_MESSAGES,
            other => number(other, None)?,
        };
    }
    Some(flags)
}
