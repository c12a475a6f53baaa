//! Arbitrary and corrupted definitions go through the parser, the verifier and both renderers
//! without a panic and in bounded time.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use xif_verify::{Context, verify};

/// A complete definition that uses every data type and element, as a base to corrupt.
const VALID: &str = include_str!("../../xif-project/tests/cases/valid-every-data-type/extension.toml");

/// Generous enough for a debug build on a loaded machine; a quadratic or exponential blow-up on
/// inputs of this size would take far longer.
const TIME_LIMIT: Duration = Duration::from_secs(2);

fn run(text: &str) -> Duration {
    let started = Instant::now();
    let diagnostics = match xif_definition::parse(text) {
        Ok(definition) => {
            let published = xif_definition::parse(VALID).expect("the base definition parses");
            let context = Context { published: Some(&published), ..Context::default() };
            verify(&definition, &context)
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "a refused definition says why");
            diagnostics
        }
    };
    for diagnostic in &diagnostics {
        assert!(!diagnostic.message.is_empty());
        if let Some(span) = diagnostic.span {
            assert!(span.start <= span.end && span.end <= text.len(), "{diagnostic:?} is outside the text");
        }
    }
    let sources = xif_diagnostics::Sources::new("extension.toml", text);
    let human = xif_diagnostics::render_human(&diagnostics, &sources, false);
    let json = xif_diagnostics::render_json(&diagnostics, &sources);
    assert_eq!(json.len(), diagnostics.len());
    assert!(diagnostics.is_empty() || human.contains('['));
    started.elapsed()
}

/// One edit of a text: delete a range, insert a fragment, or repeat a line.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, length: usize },
    Insert { at: usize, fragment: String },
    RepeatLine { line: usize },
}

fn apply(text: &str, edit: &Edit) -> String {
    let clamp = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match edit {
        Edit::Delete { at, length } => {
            let start = clamp(*at);
            let end = clamp(start + length);
            let end = end.max(start);
            format!("{}{}", &text[..start], &text[end..])
        }
        Edit::Insert { at, fragment } => {
            let at = clamp(*at);
            format!("{}{fragment}{}", &text[..at], &text[at..])
        }
        Edit::RepeatLine { line } => {
            let lines: Vec<&str> = text.lines().collect();
            let line = lines[line % lines.len()];
            format!("{text}\n{line}\n")
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop_oneof![
        Just("\"".to_owned()),
        Just("[[actions]]\nname = \"X\"\n".to_owned()),
        Just("type = \"Record\"\n".to_owned()),
        Just("record = \"Card\"\n".to_owned()),
        Just("identifier = true\n".to_owned()),
        Just("default = 99999999999999999999999\n".to_owned()),
        Just("default = 1979-05-27T07:32:00Z\n".to_owned()),
        Just("{ name = \"é\", type = \"Text\" }".to_owned()),
        Just("\u{0}\u{FEFF}\r\n".to_owned()),
        "[ -~\\n]{0,40}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 0..200usize).prop_map(|(at, length)| Edit::Delete { at, length }),
        (any::<usize>(), fragment).prop_map(|(at, fragment)| Edit::Insert { at, fragment }),
        any::<usize>().prop_map(|line| Edit::RepeatLine { line }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        prop_assert!(run(&text) < TIME_LIMIT);
    }

    #[test]
    fn toml_like_text_never_panics(text in "([a-z_\\[\\]\\{\\}=\",. 0-9\\n-]|name|type|actions|inputs|extension){0,300}") {
        prop_assert!(run(&text) < TIME_LIMIT);
    }

    #[test]
    fn corrupted_definitions_never_panic(edits in proptest::collection::vec(edit(), 1..8)) {
        let text = edits.iter().fold(VALID.to_owned(), |text, edit| apply(&text, edit));
        prop_assert!(run(&text) < TIME_LIMIT);
    }
}

#[test]
fn deep_nesting_and_long_lines_are_refused_with_a_diagnostic() {
    let inputs = [
        format!("a = {}", "[".repeat(100_000)),
        format!("a = {}", "{b = ".repeat(50_000)),
        format!("[extension]\nname = \"X\"\nversion = \"1.0.0\"\n{}b = 1", "a.".repeat(50_000)),
        format!("[extension]\nname = \"{}\"\nversion = \"1.0.0\"\n", "N".repeat(1_000_000)),
    ];
    for text in inputs {
        assert!(run(&text) < TIME_LIMIT);
    }
}
