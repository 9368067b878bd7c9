//! Maps a field path such as `spec.http[0].route` to the line it sits on in a YAML document.
//!
//! serde_yaml reports where a parse failed but exposes no spans, and semantic validation runs on
//! typed values; this index lets every finding still name its line.

use std::collections::HashMap;

use yaml_rust2::{
    parser::{Event, MarkedEventReceiver, Parser},
    scanner::Marker,
};

/// Field path → 1-based line within the document it was built from.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Index one YAML document. A document the parser rejects gives an empty index.
    pub fn build(doc: &str) -> Self {
        let mut builder = Builder::default();
        // Errors are reported by serde_yaml with its own location; here we keep what we saw.
        let _ = Parser::new_from_str(doc).load(&mut builder, false);
        Self { lines: builder.lines }
    }

    /// The line of `path`, or of its nearest indexed ancestor.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }
}

/// `a.b[1].c` → `a.b[1]` → `a.b` → `a` → ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Joins a key onto a path (`spec` + `http` → `spec.http`).
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

#[derive(Debug)]
enum Frame {
    Map { key: Option<String>, pushed: bool },
    Seq { idx: usize, pushed: bool },
}

#[derive(Debug, Default)]
struct Builder {
    lines: HashMap<String, usize>,
    path: Vec<String>,
    stack: Vec<Frame>,
}

impl Builder {
    fn current(&self) -> String {
        self.path.concat()
    }

    fn segment_for_child(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            Some(Frame::Map { key: Some(k), .. }) => {
                Some(if self.path.is_empty() { k.clone() } else { format!(".{k}") })
            }
            Some(Frame::Seq { idx, .. }) => {
                let seg = format!("[{idx}]");
                *idx += 1;
                Some(seg)
            }
            _ => None,
        }
    }

    fn value_done(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = None;
        }
    }

    fn start_container(&mut self, line: usize, map: bool) {
        let seg = self.segment_for_child();
        let pushed = seg.is_some();
        if let Some(seg) = seg {
            if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
                let p = format!("{}{seg}", self.current());
                self.lines.entry(p).or_insert(line);
            }
            self.path.push(seg);
        } else {
            self.lines.entry(self.current()).or_insert(line);
        }
        self.stack.push(if map { Frame::Map { key: None, pushed } } else { Frame::Seq { idx: 0, pushed } });
    }

    fn end_container(&mut self) {
        let pushed = match self.stack.pop() {
            Some(Frame::Map { pushed, .. } | Frame::Seq { pushed, .. }) => pushed,
            None => false,
        };
        if pushed {
            self.path.pop();
        }
        self.value_done();
    }

    fn scalar(&mut self, value: String, line: usize) {
        match self.stack.last_mut() {
            Some(Frame::Map { key: key @ None, .. }) => {
                *key = Some(value);
                let p = match self.segment_for_child() {
                    Some(seg) => format!("{}{seg}", self.current()),
                    None => self.current(),
                };
                self.lines.entry(p).or_insert(line);
            }
            Some(Frame::Map { .. }) => self.value_done(),
            Some(Frame::Seq { .. }) => {
                if let Some(seg) = self.segment_for_child() {
                    let p = format!("{}{seg}", self.current());
                    self.lines.entry(p).or_insert(line);
                }
            }
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::MappingStart(..) => self.start_container(line, true),
            Event::SequenceStart(..) => self.start_container(line, false),
            Event::MappingEnd | Event::SequenceEnd => self.end_container(),
            Event::Scalar(v, ..) => self.scalar(v, line),
            Event::Alias(_) => self.scalar(String::new(), line),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "apiVersion: v1
kind: VirtualService
spec:
  hosts:
  - a
  - b
  http:
  - route:
    - destination:
        host: x
      weight: 10
    - destinations:
        host: y
  tcp: [{match: [{port: 1}]}]
";

    #[test]
    fn finds_lines_of_keys_and_items() {
        let idx = LineIndex::build(DOC);
        assert_eq!(idx.line_of("kind"), Some(2));
        assert_eq!(idx.line_of("spec.hosts[1]"), Some(6));
        assert_eq!(idx.line_of("spec.http[0].route[0].weight"), Some(11));
        assert_eq!(idx.line_of("spec.http[0].route[1].destinations"), Some(12));
        assert_eq!(idx.line_of("spec.http[0].route[1].destinations.host"), Some(13));
        assert_eq!(idx.line_of("spec.tcp[0].match[0].port"), Some(14));
        // unknown paths fall back to their nearest ancestor
        assert_eq!(idx.line_of("spec.http[0].nope.deeper"), Some(8));
    }

    #[test]
    fn garbage_gives_no_panic() {
        for doc in ["", "[", "{a: [", "- - - ]", ":\n:", "a: *x"] {
            let _ = LineIndex::build(doc).line_of("a.b");
        }
    }
}
