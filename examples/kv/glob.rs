//! Redis's glob (`stringmatchlen`) for KEYS: `*`, `?`, `[abc]`, `[^a]`,
//! `[a-z]`, and `\` escaping the next character.

/// Whether `text` matches `pattern`. Backtracks only to the last `*`, so it
/// runs in O(len(pattern) × len(text)) at worst.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the most recent `*`: (pattern index after it,
    // text index it currently swallows up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    let (hit, next) = class(pattern, p + 1, text[t]);
                    if hit {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                // An escaped character that does not match.
                b'\\' if p + 1 < pattern.len() => {}
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        // Mismatch: let the last `*` swallow one more byte, or fail.
        match star {
            Some((after, swallowed)) => {
                p = after;
                t = swallowed + 1;
                star = Some((after, swallowed + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[at]` (just after
/// `[`): whether it matched, and the index after the closing `]`. An
/// unterminated class runs to the end of the pattern, as in Redis.
fn class(pattern: &[u8], mut at: usize, c: u8) -> (bool, usize) {
    let negate = pattern.get(at) == Some(&b'^');
    if negate {
        at += 1;
    }
    let mut hit = false;
    while at < pattern.len() && pattern[at] != b']' {
        if pattern[at] == b'\\' && at + 1 < pattern.len() {
            hit |= pattern[at + 1] == c;
            at += 2;
        } else if at + 2 < pattern.len() && pattern[at + 1] == b'-' && pattern[at + 2] != b']' {
            let (lo, hi) = (
                pattern[at].min(pattern[at + 2]),
                pattern[at].max(pattern[at + 2]),
            );
            hit |= (lo..=hi).contains(&c);
            at += 3;
        } else {
            hit |= pattern[at] == c;
            at += 1;
        }
    }
    // Step over the `]` (or stop at the end).
    let next = (at + 1).min(pattern.len());
    (hit != negate, next)
}
