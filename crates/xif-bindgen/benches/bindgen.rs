//! The bar of step 2: the bindings of a definition of 1,000 actions are generated in under
//! 20 ms.
#![expect(missing_docs, reason = "`criterion_group!` generates an undocumented public function")]

use criterion::{Criterion, criterion_group, criterion_main};

/// A definition of `actions` actions with five inputs and two outputs each, and a structure per
/// ten actions.
fn definition(actions: usize) -> xif_definition::Definition {
    let mut text = String::from("[extension]\nname = \"Generated\"\nversion = \"1.0.0\"\n");
    for index in 0..actions / 10 {
        text.push_str(&format!(
            "\n[[structures]]\nname = \"Structure{index}\"\ndescription = \"Structure {index}.\"\nattributes = [ {{ name = \"Code\", type = \"Text\" }}, {{ name = \"Amount\", type = \"Decimal\" }} ]\n"
        ));
    }
    for index in 0..actions {
        let structure = index / 10;
        text.push_str(&format!(
            "\n[[actions]]\nname = \"Action{index}\"\ndescription = \"Action {index}.\"\ninputs = [\n  \
             {{ name = \"Name\", type = \"Text\", description = \"A name.\" }},\n  \
             {{ name = \"Amount\", type = \"Currency\" }},\n  \
             {{ name = \"Item\", type = \"Record\", record = \"Structure{structure}\" }},\n  \
             {{ name = \"When\", type = \"Date Time\" }},\n  \
             {{ name = \"Flag\", type = \"Boolean\" }},\n]\n\
             outputs = [ {{ name = \"Items\", type = \"Record List\", record = \"Structure{structure}\" }}, {{ name = \"Count\", type = \"Integer\" }} ]\n"
        ));
    }
    xif_definition::parse(&text).expect("the generated definition parses")
}

fn bench(criterion: &mut Criterion) {
    let definition = definition(1_000);
    let bindings = xif_bindgen::generate(&definition);
    assert!(bindings.contains("fn action999("));
    let mut group = criterion.benchmark_group("bindgen");
    group.sample_size(50);
    group.bench_function(format!("bindings for 1,000 actions ({} KiB)", bindings.len() / 1024), |bencher| {
        bencher.iter(|| xif_bindgen::generate(std::hint::black_box(&definition)));
    });
    group.finish();

    // The figure of the bench runner (`bench/run`): plain timings, median of 21 runs.
    let runs: Vec<f64> = (0..21)
        .map(|_| {
            let started = std::time::Instant::now();
            std::hint::black_box(xif_bindgen::generate(std::hint::black_box(&definition)));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    xif_testkit::Figure::new("bindings for 1,000 actions", "ms", &runs, "under 20 ms", |median| median < 20.0).report();
}

criterion_group!(benches, bench);
criterion_main!(benches);
