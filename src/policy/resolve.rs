//! Policy variables (`${aws:username}`, `${key, 'default'}`, `${*}`) resolved against a
//! request's context, and the wildcard match that keeps resolved `*` and `?` literal.

#[allow(unused_imports)]
use super::*;

/// A policy string once its `${…}` variables are filled from the request
/// ("IAM policy elements: Variables and tags").
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Text(String),
    /// A variable names a key the request lacks, or a multivalued one, and has no default: the
    /// value is "effectively null" and matches nothing. Holds the key.
    NoValue(String),
    /// A variable names a key whose value exists but is Unknown. Holds the key.
    Unknown(String),
}

/// `${*}` and `${?}` "use where you need an * (asterisk) character" (and a `?`): resolved text
/// holds them as these private-use characters, so that no matcher reads them as wildcards.
pub(super) const LITERAL_STAR: char = '\u{E000}';
pub(super) const LITERAL_QUESTION: char = '\u{E001}';

/// Resolved text with `${*}` and `${?}` back as `*` and `?`, for comparisons without wildcards.
pub(crate) fn plain(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([LITERAL_STAR, LITERAL_QUESTION]) {
        text.replace(LITERAL_STAR, "*")
            .replace(LITERAL_QUESTION, "?")
            .into()
    } else {
        text.into()
    }
}

/// Wildcard match of resolved text, where a `${*}` or `${?}` matches only that character.
pub(crate) fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if !pattern.contains([LITERAL_STAR, LITERAL_QUESTION]) {
        return glob(pattern, text, ignore_case);
    }
    let text = text
        .replace('*', &LITERAL_STAR.to_string())
        .replace('?', &LITERAL_QUESTION.to_string());
    glob(pattern, &text, ignore_case)
}

/// `key` or `key, 'default'` ("Specifying default values").
pub(super) fn split_default(var: &str) -> (&str, Option<String>) {
    if let Some((key, rest)) = var.split_once(',') {
        let rest = rest.trim();
        if rest.len() >= 2 && rest.starts_with('\'') && rest.ends_with('\'') {
            return (key.trim(), Some(rest[1..rest.len() - 1].to_string()));
        }
    }
    (var.trim(), None)
}

/// The end of a `${…}` body: the first `}` outside a quoted default.
pub(super) fn variable_end(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Fills `${key}`, `${key, 'default'}`, `${*}`, `${?}` and `${$}` in one pass.
pub fn resolve(text: &str, ctx: &Context) -> Resolved {
    if !text.contains("${") {
        return Resolved::Text(text.to_string());
    }
    let mut out = String::new();
    let mut unknown = None;
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = variable_end(after) else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match &after[..end] {
            "*" => out.push(LITERAL_STAR),
            "?" => out.push(LITERAL_QUESTION),
            "$" => out.push('$'),
            var => {
                let (key, default) = split_default(var);
                match (ctx.get(key), default) {
                    (Some(ContextValue::Values(v)), _) if v.len() == 1 => out.push_str(&v[0]),
                    (Some(ContextValue::Unknown), _) => {
                        unknown.get_or_insert_with(|| key.to_string());
                    }
                    // Absent, or multivalued ("You can't use a multivalued condition key as a
                    // variable"): the default if there is one.
                    (_, Some(d)) => out.push_str(&d),
                    (_, None) => return Resolved::NoValue(key.to_string()),
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match unknown {
        Some(key) => Resolved::Unknown(key),
        None => Resolved::Text(out),
    }
}
