//! The bar of DESIGN.md: verifying a definition of 10,000 actions (5 parameters each) and 1,000
//! structures takes under 50 ms. Measured from text (parse and verify, what `xif verify` does
//! once the file is read) and for the rules alone.

#![expect(missing_docs, reason = "`criterion_group!` generates an undocumented public function")]

use criterion::{Criterion, criterion_group, criterion_main};
use xif_verify::{Context, verify};

/// A definition of `actions` actions with five parameters each, of every common type, and
/// `structures` structures of five attributes, the actions using the structures.
fn generate(actions: usize, structures: usize) -> String {
    let mut text =
        String::from("[extension]\nname = \"Generated\"\nversion = \"1.0.0\"\ndescription = \"A large extension.\"\n");
    for index in 0..structures {
        text.push_str(&format!(
            "\n[[structures]]\nname = \"Structure{index}\"\ndescription = \"Structure {index}.\"\nattributes = [\n  \
             {{ name = \"Code\", type = \"Text\", length = 20, mandatory = true }},\n  \
             {{ name = \"Amount\", type = \"Decimal\", length = 18, decimals = 2 }},\n  \
             {{ name = \"Count\", type = \"Integer\", default = 0 }},\n  \
             {{ name = \"When\", type = \"Date Time\" }},\n  \
             {{ name = \"Active\", type = \"Boolean\", default = true }},\n]\n"
        ));
    }
    for index in 0..actions {
        let structure = index % structures;
        text.push_str(&format!(
            "\n[[actions]]\nname = \"Action{index}\"\ndescription = \"Action {index}.\"\ninputs = [\n  \
             {{ name = \"Name\", type = \"Text\", length = 100 }},\n  \
             {{ name = \"Amount\", type = \"Currency\", default = 0.0 }},\n  \
             {{ name = \"Item\", type = \"Record\", record = \"Structure{structure}\" }},\n  \
             {{ name = \"Flag\", type = \"Boolean\", mandatory = false }},\n]\n\
             outputs = [ {{ name = \"Items\", type = \"Record List\", record = \"Structure{structure}\" }} ]\n"
        ));
    }
    text
}

fn bench(criterion: &mut Criterion) {
    let text = generate(10_000, 1_000);
    let definition = xif_definition::parse(&text).expect("the generated definition parses");
    assert_eq!(definition.actions.len(), 10_000);
    let diagnostics = verify(&definition, &Context::default());
    assert!(diagnostics.is_empty(), "the generated definition verifies cleanly: {:?}", diagnostics.first());

    let mut group = criterion.benchmark_group("verify 10,000 actions and 1,000 structures");
    group.sample_size(30);
    group.bench_function(format!("parse and verify ({} KiB of TOML)", text.len() / 1024), |bencher| {
        bencher.iter(|| {
            let definition = xif_definition::parse(std::hint::black_box(&text)).expect("parses");
            verify(&definition, &Context::default())
        });
    });
    group.bench_function("toml document tree only", |bencher| {
        bencher.iter(|| toml::de::DeTable::parse(std::hint::black_box(&text)).map(|_| ()));
    });
    group.bench_function("toml_parser lex and events only", |bencher| {
        struct Nothing;
        impl toml_parser::parser::EventReceiver for Nothing {}
        bencher.iter(|| {
            let source = toml_parser::Source::new(std::hint::black_box(&text));
            let tokens: Vec<_> = source.lex().collect();
            toml_parser::parser::parse_document(&tokens, &mut Nothing, &mut ());
            tokens.len()
        });
    });
    group.bench_function("verify the parsed definition", |bencher| {
        bencher.iter(|| verify(std::hint::black_box(&definition), &Context::default()));
    });
    group.finish();

    // The figures of the bench runner (`bench/run`): plain timings, median of 15 runs each.
    let milliseconds = |work: &dyn Fn()| -> Vec<f64> {
        (0..15)
            .map(|_| {
                let started = std::time::Instant::now();
                work();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect()
    };
    let rules = milliseconds(&|| {
        std::hint::black_box(verify(std::hint::black_box(&definition), &Context::default()));
    });
    xif_testkit::Figure::new(
        "verify rules, 10,000 actions + 1,000 structures",
        "ms",
        &rules,
        "under 50 ms",
        |median| median < 50.0,
    )
    .report();
    let from_text = milliseconds(&|| {
        let definition = xif_definition::parse(std::hint::black_box(&text)).expect("parses");
        std::hint::black_box(verify(&definition, &Context::default()));
    });
    let tree = milliseconds(&|| {
        std::hint::black_box(toml::de::DeTable::parse(std::hint::black_box(&text)).map(|_| ()).ok());
    });
    let (tree, _, _) = xif_testkit::spread(&tree);
    xif_testkit::Figure::new(
        "parse + verify the same from its 4 MiB of TOML (baseline: the toml crate's tree alone)",
        "ms",
        &from_text,
        "under 50 ms",
        |median| median < 50.0,
    )
    .against(tree)
    .report();
}

criterion_group!(benches, bench);
criterion_main!(benches);
