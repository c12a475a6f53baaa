//! Rendering diagnostics for people (rustc-style, with the source line) and for machines (JSON).

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::{Code, Diagnostic, Severity, Span};

/// Maps byte offsets of a text to 1-based lines and columns (columns count characters).
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(offset, _)| offset + 1)).collect();
        Self { text, line_starts }
    }

    /// The 1-based line and character column of byte `offset` (clamped to the text).
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|start| *start <= offset) - 1;
        let column = self.text[self.line_starts[line]..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// The byte range of the whole lines that `span` touches, without the final newline.
    fn lines_around(&self, span: Span) -> (usize, std::ops::Range<usize>) {
        let start = self.floor_char_boundary(span.start.min(self.text.len()));
        let end = self.floor_char_boundary(span.end.clamp(start, self.text.len()));
        let first_line = self.line_starts.partition_point(|line| *line <= start) - 1;
        let last_line = self.line_starts.partition_point(|line| *line <= end.max(start)) - 1;
        let from = self.line_starts[first_line];
        let to = self.line_starts.get(last_line + 1).map_or(self.text.len(), |next| next.saturating_sub(1).max(from));
        (first_line + 1, from..to.max(end))
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

/// The text of a file that diagnostics point into, and how the output names it.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The file as diagnostics name it (relative to the project); `None` for the definition.
    pub file: Option<String>,
    /// How the output names it, such as `Shop/src/main.rs`.
    pub shown: String,
    /// Its text.
    pub text: String,
}

/// The files diagnostics point into. A diagnostic about a file not listed is rendered without
/// its source lines.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceText>,
}

impl Sources {
    /// Sources with the definition, shown as `shown`.
    pub fn new(shown: impl Into<String>, text: impl Into<String>) -> Self {
        Self { files: vec![SourceText { file: None, shown: shown.into(), text: text.into() }] }
    }

    /// Adds `file`, shown as `shown`.
    pub fn add(&mut self, file: impl Into<String>, shown: impl Into<String>, text: impl Into<String>) {
        self.files.push(SourceText { file: Some(file.into()), shown: shown.into(), text: text.into() });
    }

    /// Whether `file` is listed.
    pub fn contains(&self, file: Option<&str>) -> bool {
        self.get(file).is_some()
    }

    fn get(&self, file: Option<&str>) -> Option<&SourceText> {
        self.files.iter().find(|source| source.file.as_deref() == file)
    }

    fn shown<'a>(&'a self, file: Option<&'a str>) -> &'a str {
        self.get(file).map_or_else(|| file.unwrap_or("extension.toml"), |source| source.shown.as_str())
    }
}

/// Renders diagnostics the way rustc does, each with the source line it points at, its label
/// and its `help:` line; `color` adds ANSI styles.
pub fn render_human(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let renderer = if color { Renderer::styled() } else { Renderer::plain() };
    let indexes: Vec<LineIndex<'_>> = sources.files.iter().map(|source| LineIndex::new(&source.text)).collect();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let file = diagnostic.file.as_deref();
        let path = sources.shown(file);
        let found = sources.files.iter().position(|source| source.file.as_deref() == file);
        let (source, index) = match found {
            Some(position) => (sources.files[position].text.as_str(), Some(&indexes[position])),
            None => ("", None),
        };
        let level = match diagnostic.severity() {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = level.primary_title(diagnostic.message.as_str()).id(diagnostic.code.as_str());
        let mut group = match (diagnostic.span, index) {
            (Some(span), Some(index)) => {
                let (line, range) = index.lines_around(span);
                let excerpt = &source[range.clone()];
                let start = span.start.clamp(range.start, range.end) - range.start;
                let end = span.end.clamp(range.start + start, range.end) - range.start;
                let mut annotation = AnnotationKind::Primary.span(start..end);
                if let Some(label) = &diagnostic.label {
                    annotation = annotation.label(label.as_str());
                }
                let snippet = Snippet::source(excerpt).line_start(line).path(path).annotation(annotation);
                let mut group = Group::with_title(title).element(snippet);
                for (related, label) in &diagnostic.related {
                    let (line, range) = index.lines_around(*related);
                    let start = related.start.clamp(range.start, range.end) - range.start;
                    let end = related.end.clamp(range.start + start, range.end) - range.start;
                    group = group.element(
                        Snippet::source(&source[range])
                            .line_start(line)
                            .path(path)
                            .annotation(AnnotationKind::Context.span(start..end).label(label.as_str())),
                    );
                }
                group
            }
            _ => Group::with_title(title)
                .element(Snippet::<annotate_snippets::Annotation<'_>>::source("").path(path).fold(true)),
        };
        if let Some(help) = &diagnostic.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push_str("\n\n");
    }
    out
}

/// The closing line of a verification: `` `NAME`: 2 errors, 1 warning ``.
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let (errors, warnings) = crate::count(diagnostics);
    format!("{} {}, {} {}", errors, plural(errors, "error"), warnings, plural(warnings, "warning"))
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 { word.to_owned() } else { format!("{word}s") }
}

/// One diagnostic as the JSON output shows it.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    /// The stable code, `XE0103`.
    pub code: Code,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong.
    pub message: &'a str,
    /// The code's one-line title from the catalogue.
    pub title: &'static str,
    /// The file it is about, whether or not it points at a place in it.
    pub file: &'a str,
    /// Where in the file it points, when it points somewhere.
    pub location: Option<JsonLocation<'a>>,
    /// The text under the pointed-at source.
    pub label: Option<&'a str>,
    /// How to fix it.
    pub help: Option<&'a str>,
    /// Other places that explain this one, each with its label.
    pub related: Vec<JsonRelated<'a>>,
}

/// Another place a diagnostic points at.
#[derive(Debug, Serialize)]
pub struct JsonRelated<'a> {
    /// Where.
    pub location: JsonLocation<'a>,
    /// What it has to do with the diagnostic.
    pub label: &'a str,
}

/// A location in a file, both as bytes and as 1-based lines and character columns.
#[derive(Debug, Serialize)]
pub struct JsonLocation<'a> {
    /// The file, as given to the renderer.
    pub file: &'a str,
    /// First line.
    pub line: usize,
    /// First column.
    pub column: usize,
    /// Last line.
    pub end_line: usize,
    /// Column one past the end.
    pub end_column: usize,
    /// Byte offset of the start.
    pub byte_start: usize,
    /// Byte offset one past the end.
    pub byte_end: usize,
}

/// The diagnostics as JSON values, with lines and columns resolved against their sources.
pub fn render_json<'a>(diagnostics: &'a [Diagnostic], sources: &'a Sources) -> Vec<JsonDiagnostic<'a>> {
    let indexes: Vec<LineIndex<'_>> = sources.files.iter().map(|source| LineIndex::new(&source.text)).collect();
    let empty = LineIndex::new("");
    diagnostics
        .iter()
        .map(|diagnostic| {
            let file = diagnostic.file.as_deref();
            let path = sources.shown(file);
            let index = sources
                .files
                .iter()
                .position(|source| source.file.as_deref() == file)
                .map_or(&empty, |position| &indexes[position]);
            (diagnostic, path, index)
        })
        .map(|(diagnostic, path, index)| JsonDiagnostic {
            code: diagnostic.code,
            severity: diagnostic.severity(),
            message: &diagnostic.message,
            title: diagnostic.code.title(),
            file: path,
            location: diagnostic.span.map(|span| location(index, path, span)),
            label: diagnostic.label.as_deref(),
            help: diagnostic.help.as_deref(),
            related: diagnostic
                .related
                .iter()
                .map(|(span, label)| JsonRelated { location: location(index, path, *span), label })
                .collect(),
        })
        .collect()
}

fn location<'a>(index: &LineIndex<'_>, file: &'a str, span: Span) -> JsonLocation<'a> {
    let (line, column) = index.line_column(span.start);
    let (end_line, end_column) = index.line_column(span.end);
    JsonLocation { file, line, column, end_line, end_column, byte_start: span.start, byte_end: span.end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_columns_count_characters() {
        let index = LineIndex::new("a = 1\nnamé = \"x\"\n");
        assert_eq!(index.line_column(0), (1, 1));
        assert_eq!(index.line_column(6), (2, 1));
        assert_eq!(index.line_column(13), (2, 7));
        assert_eq!(index.line_column(1000), (3, 1));
    }

    #[test]
    fn human_rendering_shows_code_line_and_help() {
        let source = "[extension]\nname = \"Bad Name\"\n";
        let diagnostic = Diagnostic::new(Code::InvalidName, "the extension name `Bad Name` has a space")
            .at(19..29)
            .label("not allowed here")
            .help("use letters, digits and `_`");
        let text = render_human(&[diagnostic], &Sources::new("extension.toml", source), false);
        assert!(text.contains("error[XE0101]: the extension name `Bad Name` has a space"), "{text}");
        assert!(text.contains("--> extension.toml:2:8"), "{text}");
        assert!(text.contains("name = \"Bad Name\""), "{text}");
        assert!(text.contains("help: use letters"), "{text}");
    }
}
