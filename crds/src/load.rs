//! Loading Istio YAML/JSON from files and folders into typed [`Resource`]s.
//!
//! A file holds any number of `---`-separated documents (or a `kind: List`); each is dispatched on
//! `apiVersion`/`kind`, parsed with unknown fields rejected, then validated. Every problem becomes a
//! [`Diagnostic`] naming file, line, kind, name and field, and all of them are reported at once. A
//! resource with an error is left out; the valid ones still load, and nothing half-parsed is kept.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;

use crate::{
    lines::{LineIndex, join_key},
    resource::{self, Resource},
    validate::{self, Findings, Severity},
};

/// Where a resource came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: Arc<Path>,
    /// 1-based line where the resource's document starts.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A resource that parsed and validated, with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub resource: Resource,
    pub origin: Origin,
}

/// One problem, formatted as `path:line: Kind namespace/name: field.path: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.kind.is_empty() {
            f.write_str(&self.kind)?;
            match (self.namespace.as_str(), self.name.as_str()) {
                ("", "") => {}
                ("", name) => write!(f, " {name}")?,
                (ns, name) => write!(f, " {ns}/{name}")?,
            }
            f.write_str(": ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What loading produced: the valid resources, in file order, and every diagnostic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub resources: Vec<Loaded>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadReport {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// The error diagnostics.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    fn merge(&mut self, other: LoadReport) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
    }
}

/// Files with these extensions are read from folders; named files are read whatever their name.
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Upper bound on one config file; larger files are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Load files and folders (recursively, in path order, skipping hidden entries).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> LoadReport {
    let mut report = LoadReport::default();
    for path in paths {
        let path = path.as_ref();
        let mut files = Vec::new();
        if path.is_dir() {
            if let Err(e) = collect_files(path, &mut files) {
                report.diagnostics.push(file_error(path, 0, format!("cannot read folder: {e}")));
            }
        } else {
            files.push(path.to_path_buf());
        }
        for file in files {
            report.merge(load_file(&file));
        }
    }
    mark_duplicates(&mut report);
    report
}

/// Every config file under `dir`, sorted.
pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
    Ok(())
}

/// Load one file.
pub fn load_file(path: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            report.diagnostics.push(file_error(
                path,
                0,
                format!("file is larger than {MAX_FILE_BYTES} bytes"),
            ));
            return report;
        }
        Ok(_) => {}
        Err(e) => {
            report.diagnostics.push(file_error(path, 0, format!("cannot read file: {e}")));
            return report;
        }
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(path, &text),
            Err(e) => {
                report.diagnostics.push(file_error(path, 0, format!("file is not UTF-8: {e}")));
                report
            }
        },
        Err(e) => {
            report.diagnostics.push(file_error(path, 0, format!("cannot read file: {e}")));
            report
        }
    }
}

/// Load the text of one file; `path` is used in diagnostics and origins.
pub fn load_str(path: &Path, text: &str) -> LoadReport {
    let file: Arc<Path> = Arc::from(path);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut report = LoadReport::default();
    for (start, doc) in split_documents(text) {
        let index = LineIndex::build(doc);
        let mut cx = DocContext { file: &file, start, index: &index, report: &mut report };
        cx.load_document(doc, "");
    }
    mark_duplicates(&mut report);
    report
}

/// Split a stream at `---` document markers, keeping each document's 1-based start line.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let l = line.trim_end_matches(['\n', '\r']);
        let is_marker = l == "---" || l.starts_with("--- ") || l.starts_with("---\t");
        if is_marker && offset > start_byte {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset;
            start_line = i + 1;
        }
        offset += line.len();
    }
    if start_byte < text.len() {
        docs.push((start_line, &text[start_byte..]));
    }
    docs
}

struct DocContext<'a> {
    file: &'a Arc<Path>,
    /// 1-based line of the document's first line in the file.
    start: usize,
    index: &'a LineIndex,
    report: &'a mut LoadReport,
}

/// Identity of the resource a diagnostic is about.
#[derive(Default, Clone)]
struct Subject {
    kind: String,
    namespace: String,
    name: String,
}

const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

impl DocContext<'_> {
    fn line(&self, prefix: &str, field: &str) -> usize {
        let path = if prefix.is_empty() {
            field.to_string()
        } else if field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        self.start + self.index.line_of(&path).unwrap_or(1) - 1
    }

    fn push(&mut self, subject: &Subject, line: usize, field: &str, severity: Severity, message: String) {
        self.report.diagnostics.push(Diagnostic {
            file: self.file.display().to_string(),
            line,
            kind: subject.kind.clone(),
            namespace: subject.namespace.clone(),
            name: subject.name.clone(),
            field: field.to_string(),
            severity,
            message,
        });
    }

    fn error_at(&mut self, subject: &Subject, prefix: &str, field: &str, message: String) {
        let line = self.line(prefix, field);
        self.push(subject, line, field, Severity::Error, message);
    }

    /// Load one document (or one `List` item, whose paths start with `prefix`).
    fn load_document(&mut self, doc: &str, prefix: &str) {
        let value: serde_yaml::Value = match serde_yaml::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                let line = self.start + e.location().map_or(1, |l| l.line()) - 1;
                self.push(
                    &Subject::default(),
                    line,
                    "",
                    Severity::Error,
                    format!("invalid YAML: {}", strip_location(&e)),
                );
                return;
            }
        };
        self.load_value(doc, value, prefix);
    }

    fn load_value(&mut self, doc: &str, value: serde_yaml::Value, prefix: &str) {
        use serde_yaml::Value;
        let map = match value {
            Value::Null => return, // an empty document, e.g. a trailing `---`
            Value::Mapping(m) => m,
            other => {
                let what = match other {
                    Value::Sequence(_) => "a list",
                    _ => "a scalar",
                };
                self.error_at(
                    &Subject::default(),
                    prefix,
                    "",
                    format!("expected a resource (a mapping), found {what}"),
                );
                return;
            }
        };
        let get_str = |m: &serde_yaml::Mapping, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let meta = map.get("metadata").and_then(Value::as_mapping);
        let mut subject = Subject {
            kind: get_str(&map, "kind").unwrap_or_default(),
            namespace: meta.and_then(|m| get_str(m, "namespace")).unwrap_or_default(),
            name: meta.and_then(|m| get_str(m, "name")).unwrap_or_default(),
        };
        let Some(api_version) = get_str(&map, "apiVersion") else {
            self.error_at(
                &subject,
                prefix,
                "apiVersion",
                "apiVersion is required and must be a string".into(),
            );
            return;
        };
        if subject.kind.is_empty() {
            self.error_at(&subject, prefix, "kind", "kind is required and must be a string".into());
            return;
        }

        // kubectl's `kind: List` (and `FooList`): load each item.
        if api_version == "v1"
            && subject.kind.ends_with("List")
            && let Some(Value::Sequence(items)) = map.get("items")
        {
            for (i, item) in items.iter().enumerate() {
                let sep = if prefix.is_empty() { "" } else { "." };
                let item_prefix = format!("{prefix}{sep}items[{i}]");
                self.load_list_item(item.clone(), &item_prefix);
            }
            return;
        }

        let Some(info) = resource::lookup(&api_version, &subject.kind) else {
            let (group, _) = resource::split_api_version(&api_version);
            let message = if group.ends_with("istio.io") {
                format!("{api_version} {} is not supported by Citadel; ignored", subject.kind)
            } else {
                format!("{api_version} {} is not an Istio kind; ignored", subject.kind)
            };
            let line = self.line(prefix, "kind");
            self.push(&subject, line, "", Severity::Warning, message);
            return;
        };
        if !info.serves(&api_version) {
            let served: Vec<_> = info.versions.iter().map(|v| info.api_version(v)).collect();
            self.error_at(
                &subject,
                prefix,
                "apiVersion",
                format!(
                    "{api_version} is not a served version of {}; use {}",
                    info.kind,
                    served.join(" or ")
                ),
            );
            return;
        }
        if subject.namespace.is_empty() && info.namespaced {
            subject.namespace = "default".into();
        }

        let mut failed = false;
        for key in map.keys() {
            let key_str = key.as_str().unwrap_or("<non-string key>");
            if !TOP_LEVEL.contains(&key_str) {
                self.error_at(&subject, prefix, key_str, format!("unknown field `{key_str}`"));
                failed = true;
            }
        }
        if subject.name.is_empty() {
            self.error_at(&subject, prefix, "metadata.name", "metadata.name is required".into());
            failed = true;
        }
        if failed {
            return;
        }

        // serde reports only the first unknown field; the schema walk finds all of them.
        let mut unknown_reported = false;
        if let Some(spec) = map.get("spec") {
            for (path, field, known) in crate::crdgen::unknown_fields(info.kind, spec) {
                let mut known = known;
                known.sort();
                let expected = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                self.error_at(
                    &subject,
                    prefix,
                    &join_key(&path, &field),
                    format!("unknown field `{field}`, expected one of {expected}"),
                );
                unknown_reported = true;
            }
        }

        // A kind with a spec may omit it (`spec: {}` is the same); parse from the value then, since
        // the text has no spec to point at.
        let parsed = if info.group.is_empty() || map.contains_key("spec") {
            Resource::parse_as(info.kind, serde_yaml::Deserializer::from_str(doc))
        } else {
            let mut with_spec = map.clone();
            with_spec.insert("spec".into(), Value::Mapping(Default::default()));
            Resource::parse_as(info.kind, Value::Mapping(with_spec))
        };
        let mut resource = match parsed {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                let (field, message) = describe_parse_error(&e);
                // An unknown field serde stopped at was already reported by the schema walk.
                if !(unknown_reported && message.starts_with("unknown field")) {
                    self.error_at(&subject, prefix, &field, message);
                }
                return;
            }
            None => return, // unreachable: lookup() and parse_as() share the registry
        };
        if unknown_reported {
            return;
        }

        let meta = resource.metadata_mut();
        if info.namespaced {
            meta.namespace = Some(subject.namespace.clone());
        } else if meta.namespace.take().is_some() {
            let line = self.line(prefix, "metadata.namespace");
            self.push(
                &subject,
                line,
                "metadata.namespace",
                Severity::Warning,
                format!("{} is cluster-scoped; namespace ignored", info.kind),
            );
            subject.namespace.clear();
        }

        let mut findings = Findings::default();
        validate::resource(&resource, &mut findings);
        let rejected = findings.has_errors();
        for f in findings.0 {
            let line = self.line(prefix, &f.field);
            self.push(&subject, line, &f.field, f.severity, f.message);
        }
        if !rejected {
            let line = self.line(prefix, "");
            self.report.resources.push(Loaded { resource, origin: Origin { file: self.file.clone(), line } });
        }
    }

    /// A `List` item: parsed from its own re-serialized text; lines come from the outer
    /// document's index (`prefix` + field), since the re-serialized text has lines of its own.
    fn load_list_item(&mut self, item: serde_yaml::Value, prefix: &str) {
        let text = serde_yaml::to_string(&item).unwrap_or_default();
        self.load_value(&text, item, prefix);
    }
}

/// The field path and message of a typed-parse error. For an unknown field, the path names the
/// field itself (`spec.http[0].route[0].destinations`), not just its parent.
fn describe_parse_error(e: &serde_path_to_error::Error<serde_yaml::Error>) -> (String, String) {
    let mut path = render_path(e.path());
    let mut message = strip_location(e.inner());
    // serde_yaml prefixes its own copy of the path ("spec.rules[0]: unknown field ..."); the
    // diagnostic has the path in its own column.
    if let Some((p, rest)) = message.split_once(": ")
        && !p.is_empty()
        && !p.contains([' ', '`'])
    {
        message = rest.to_string();
    }
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next())
        && !path.ends_with(field)
    {
        path = join_key(&path, field);
    }
    (path, message)
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde_yaml appends " at line L column C"; the diagnostic carries the line itself.
fn strip_location(e: &serde_yaml::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn file_error(path: &Path, line: usize, message: String) -> Diagnostic {
    Diagnostic {
        file: path.display().to_string(),
        line,
        kind: String::new(),
        namespace: String::new(),
        name: String::new(),
        field: String::new(),
        severity: Severity::Error,
        message,
    }
}

/// A second resource with the same kind, namespace and name is an error; the first one stays.
fn mark_duplicates(report: &mut LoadReport) {
    let mut seen: HashMap<(String, String), Origin> = HashMap::new();
    let mut keep = Vec::with_capacity(report.resources.len());
    for loaded in std::mem::take(&mut report.resources) {
        let key = (loaded.resource.kind().to_string(), loaded.resource.qualified_name());
        if let Some(first) = seen.get(&key) {
            report.diagnostics.push(Diagnostic {
                file: loaded.origin.file.display().to_string(),
                line: loaded.origin.line,
                kind: key.0,
                namespace: loaded.resource.namespace().to_string(),
                name: loaded.resource.name().to_string(),
                field: "metadata.name".into(),
                severity: Severity::Error,
                message: format!("duplicate resource; already defined at {first}"),
            });
        } else {
            seen.insert(key, loaded.origin.clone());
            keep.push(loaded);
        }
    }
    report.resources = keep;
}

#[cfg(test)]
mod tests;
