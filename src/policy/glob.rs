//! IAM's wildcard match (`*` any run, `?` one character), shared by the evaluator and the
//! SSE rules. A leaf: it imports nothing.

/// IAM wildcard match: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if !pattern.contains(['*', '?']) {
        return if ignore_case && pattern.is_ascii() && text.is_ascii() {
            pattern.eq_ignore_ascii_case(text)
        } else if ignore_case {
            pattern.to_lowercase() == text.to_lowercase()
        } else {
            pattern == text
        };
    }
    if pattern.is_ascii() && text.is_ascii() {
        let eq = |a: u8, b: u8| {
            if ignore_case {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        return wildcard(pattern.as_bytes(), text.as_bytes(), b'*', b'?', eq);
    }
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    wildcard(&p, &t, '*', '?', |a, b| a == b)
}

/// Greedy wildcard matching with backtracking to the last `*` (linear in practice).
fn wildcard<T: Copy + PartialEq>(
    p: &[T],
    t: &[T],
    star: T,
    one: T,
    eq: impl Fn(T, T) -> bool,
) -> bool {
    let (mut pi, mut ti, mut last_star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != star && (p[pi] == one || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star {
            last_star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = last_star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_follows_iam_wildcards() {
        assert!(glob("s3:*", "s3:PutObject", true));
        assert!(glob("S3:put*", "s3:PutObject", true));
        assert!(glob(
            "arn:aws:s3:::b/*/_started",
            "arn:aws:s3:::b/x/y/_started",
            false
        ));
        assert!(glob("a?c", "abc", false));
        assert!(!glob(
            "arn:aws:s3:::b/logs/*",
            "arn:aws:s3:::b/exports/x",
            false
        ));
        assert!(!glob("abc", "ab", false));
    }
}
