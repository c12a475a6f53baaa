//! Diagnostics shared by every stage of xif: the [`Diagnostic`] type, the catalogue of stable
//! [`Code`]s with their long explanations, and the two renderings (rustc-style text for people,
//! JSON for machines).
//!
//! This crate does no IO: renderers return strings and the caller decides where they go.

mod catalogue;
mod render;

use std::ops::Range;

pub use catalogue::{Code, Step};
pub use render::{
    JsonDiagnostic, JsonLocation, JsonRelated, LineIndex, SourceText, Sources, render_human, render_json, summary,
};

/// How serious a diagnostic is. Errors stop a 1-Click Publish; warnings are reported and the
/// run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The run stops.
    Error,
    /// Reported; the run goes on.
    Warning,
}

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span over `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

impl From<Range<usize>> for Span {
    fn from(range: Range<usize>) -> Self {
        Self::new(range.start, range.end)
    }
}

impl From<Span> for Range<usize> {
    fn from(span: Span) -> Self {
        span.start..span.end
    }
}

/// One finding: a code from the catalogue, what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code; the severity follows from it.
    pub code: Code,
    /// What is wrong, lower case, names in backticks.
    pub message: String,
    /// The file it is about, relative to the project; `None` for the definition.
    pub file: Option<String>,
    /// Where in that file it points; `None` for the file as a whole.
    pub span: Option<Span>,
    /// A short text shown under the pointed-at source.
    pub label: Option<String>,
    /// How to fix it, where a fix is known.
    pub help: Option<String>,
    /// Other places that explain this one, such as the first declaration of a duplicate.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with `code` and `message` and nothing else.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), file: None, span: None, label: None, help: None, related: Vec::new() }
    }

    /// Points the diagnostic at `span`.
    #[must_use]
    pub fn at(mut self, span: impl Into<Span>) -> Self {
        self.span = Some(span.into());
        self
    }

    /// Says the diagnostic is about `file` (relative to the project), not the definition.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Adds a label shown under the pointed-at source.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a `help:` line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Points also at `span`, another place that explains this one.
    #[must_use]
    pub fn related(mut self, span: impl Into<Span>, label: impl Into<String>) -> Self {
        self.related.push((span.into(), label.into()));
        self
    }

    /// The severity of this diagnostic's code.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// Whether this diagnostic stops the run.
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

/// Counts errors and warnings in `diagnostics`.
pub fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).count();
    (errors, diagnostics.len() - errors)
}

/// The indefinite article for `word` in English prose: `an` before a vowel sound (`an Entry`,
/// `an Hour`), `a` otherwise (`a Customer`, `a User`, `a Euro`). By the first letters, with the
/// usual exceptions; hand-written because these few lines do not warrant a dependency.
pub fn article(word: &str) -> &'static str {
    let lower = word.trim_start_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|prefix| lower.starts_with(prefix));
    if starts(&["uni", "use", "usa", "usu", "uti", "ura", "eu", "ewe", "one", "once"]) {
        return "a";
    }
    if starts(&["hour", "honest", "honor", "honour", "heir"]) {
        return "an";
    }
    if lower.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// The closest of `candidates` to `typed`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::osa_distance(&typed, &candidate.to_lowercase())))
        .filter(|(candidate, distance)| *distance <= (candidate.len().max(3) / 3).max(1))
        .min_by_key(|(_, distance)| *distance)
        .map(|(candidate, _)| candidate)
}

#[cfg(test)]
mod tests {
    #[test]
    fn articles_follow_the_first_sound() {
        for (word, expected) in [
            ("Entry", "an"),
            ("Item", "an"),
            ("Order", "an"),
            ("Account", "an"),
            ("Hour", "an"),
            ("Customer", "a"),
            ("User", "a"),
            ("Unit", "a"),
            ("Euro", "a"),
            ("Umbrella", "an"),
            ("`Entry`", "an"),
        ] {
            assert_eq!(article(word), expected, "{word}");
        }
    }

    use super::*;

    #[test]
    fn did_you_mean_finds_close_names_only() {
        let keys = ["description", "inputs", "outputs", "function"];
        assert_eq!(did_you_mean("descripton", keys), Some("description"));
        assert_eq!(did_you_mean("Inputs", keys), Some("inputs"));
        assert_eq!(did_you_mean("functoin", keys), Some("function"));
        assert_eq!(did_you_mean("zebra", keys), None);
    }
}
