//! Request path normalization as Envoy's HTTP connection manager does it for Istio's
//! `meshConfig.pathNormalization` modes (ISTIO-FACTS §5.7), and URI-template path matching for
//! `{*}` / `{**}` policy paths (§5.3).

use std::fmt;

use serde::{Deserialize, Serialize};

/// `ProxyPathNormalization.NormalizationType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    /// No normalization (`normalize_path=false`).
    None,
    /// RFC 3986 normalization; `DEFAULT` is the same (§5.7 "BASE/DEFAULT ⇒ normalize_path=true").
    #[default]
    #[serde(alias = "DEFAULT")]
    Base,
    /// BASE plus merging of repeated slashes.
    MergeSlashes,
    /// MERGE_SLASHES plus decoding of `%2F` and `%5C` first (`UNESCAPE_AND_FORWARD`).
    DecodeAndMergeSlashes,
}

impl From<crds::mesh::Normalization> for PathNormalization {
    /// MeshConfig's `pathNormalization.normalization`; DEFAULT is BASE (ISTIO-FACTS §5.7).
    fn from(n: crds::mesh::Normalization) -> Self {
        use crds::mesh::Normalization as N;
        match n {
            N::Default | N::Base => Self::Base,
            N::None => Self::None,
            N::MergeSlashes => Self::MergeSlashes,
            N::DecodeAndMergeSlashes => Self::DecodeAndMergeSlashes,
        }
    }
}

/// Why Envoy answers 400 instead of routing the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `%00` in the path (§5.7 "`%00` ⇒ 400").
    #[error("path contains an encoded NUL (%00)")]
    EncodedNul,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
}

/// Strips the query (`?...`) and fragment: policies match the path alone (§5.3).
pub fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` where the decoded byte satisfies `keep`; other escapes stay as written.
fn decode_where(path: &str, keep: impl Fn(u8) -> bool) -> Result<String, PathError> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let c = h * 16 + l;
            if c == 0 {
                return Err(PathError::EncodedNul);
            }
            if keep(c) {
                out.push(c);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Only ASCII bytes are ever decoded, so the output stays valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Unreserved characters that BASE decodes: `%2d %2e %30-%39 %41-%5a %5f %61-%7a %7e` (§5.7).
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §5.2.4 dot-segment removal on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

impl PathNormalization {
    /// Normalizes a request path (query already stripped or not: it is stripped here), in
    /// Envoy's order: unescape slashes, canonicalize, merge slashes.
    pub fn normalize(self, raw: &str) -> Result<String, PathError> {
        let path = strip_query(raw);
        if self == Self::None {
            return Ok(path.to_string());
        }
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        // Fast path: nothing to decode, resolve or merge.
        let merge = matches!(self, Self::MergeSlashes | Self::DecodeAndMergeSlashes);
        let needs_work = path.bytes().any(|b| b == b'%' || b == b'\\')
            || path.contains("/.")
            || (merge && path.contains("//"));
        if !needs_work {
            return Ok(path.to_string());
        }
        let path = if self == Self::DecodeAndMergeSlashes {
            decode_where(path, |c| c == b'/' || c == b'\\')?
        } else {
            path.to_string()
        };
        let decoded = decode_where(&path, is_unreserved)?.replace('\\', "/");
        let canonical = remove_dot_segments(&decoded);
        Ok(match self {
            Self::MergeSlashes | Self::DecodeAndMergeSlashes => merge_slashes(&canonical),
            _ => canonical,
        })
    }
}

/// One piece of a URI template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplatePart {
    Literal(Box<str>),
    /// `{*}`: exactly one non-empty path segment.
    Segment,
    /// `{**}`: any run of path characters, `/` included, possibly empty.
    Rest,
}

/// A policy path using `{*}` / `{**}` (Istio ⇒ Envoy `uri_template` matcher, §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<TemplatePart>,
    source: Box<str>,
}

/// Characters Envoy's template variables accept (RFC 3986 pchar without `/`).
fn is_pchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=*".contains(&c)
}

impl PathTemplate {
    /// True when the value uses template operators.
    pub fn is_template(v: &str) -> bool {
        v.contains("{*}") || v.contains("{**}")
    }

    /// Compiles a template.
    pub fn new(v: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = v;
        while let Some(i) = rest.find('{') {
            let (lit, tail) = rest.split_at(i);
            if !lit.is_empty() {
                parts.push(TemplatePart::Literal(lit.into()));
            }
            if let Some(t) = tail.strip_prefix("{**}") {
                parts.push(TemplatePart::Rest);
                rest = t;
            } else if let Some(t) = tail.strip_prefix("{*}") {
                parts.push(TemplatePart::Segment);
                rest = t;
            } else {
                parts.push(TemplatePart::Literal("{".into()));
                rest = &tail[1..];
            }
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.into()));
        }
        Self { parts, source: v.into() }
    }

    /// Full match of a normalized path.
    pub fn matches(&self, path: &str) -> bool {
        Self::match_from(&self.parts, path.as_bytes())
    }

    fn match_from(parts: &[TemplatePart], s: &[u8]) -> bool {
        let Some((first, rest)) = parts.split_first() else { return s.is_empty() };
        match first {
            TemplatePart::Literal(l) => s.starts_with(l.as_bytes()) && Self::match_from(rest, &s[l.len()..]),
            TemplatePart::Segment => {
                let max = s.iter().position(|&c| !is_pchar(c)).unwrap_or(s.len());
                (1..=max).rev().any(|n| Self::match_from(rest, &s[n..]))
            }
            TemplatePart::Rest => {
                let max = s.iter().position(|&c| !(is_pchar(c) || c == b'/')).unwrap_or(s.len());
                (0..=max).rev().any(|n| Self::match_from(rest, &s[n..]))
            }
        }
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_resolves_dot_segments_and_unreserved_escapes() {
        let n = PathNormalization::Base;
        assert_eq!(n.normalize("/public/../private").as_deref(), Ok("/private"));
        assert_eq!(n.normalize("/public/%2E%2E/private").as_deref(), Ok("/private"));
        assert_eq!(n.normalize("/a\\b").as_deref(), Ok("/a/b"));
        assert_eq!(n.normalize("/a/%2f").as_deref(), Ok("/a/%2f"));
        assert_eq!(n.normalize("/a?x=/../b").as_deref(), Ok("/a"));
        assert_eq!(n.normalize("/a/%00"), Err(PathError::EncodedNul));
    }

    #[test]
    fn template_operators() {
        let t = PathTemplate::new("/foo/{*}/bar");
        assert!(t.matches("/foo/x/bar"));
        assert!(!t.matches("/foo//bar"));
        assert!(!t.matches("/foo/x/y/bar"));
        let t = PathTemplate::new("/foo/{**}");
        assert!(t.matches("/foo/x/y/z"));
        assert!(t.matches("/foo/"));
        assert!(!t.matches("/bar/x"));
    }
}
