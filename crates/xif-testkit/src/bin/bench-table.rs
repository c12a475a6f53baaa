//! `bench-table RESULTS.jsonl OUTPUT.json`: the benchmark runner's last step. Reads the figures
//! the benchmarks appended, one JSON object per line, prints them as a table (what, figure
//! with min and max, baseline, ratio, bar, met) and writes them as one JSON document.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: the table on stdout, errors on stderr"
)]

use xif_testkit::Figure;

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [results, output] = arguments.as_slice() else {
        eprintln!("usage: bench-table RESULTS.jsonl OUTPUT.json");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(results).unwrap_or_else(|error| {
        eprintln!("error: cannot read `{results}`: {error}");
        std::process::exit(2);
    });
    let figures: Vec<Figure> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                eprintln!("error: `{results}` holds a line that is not a figure ({error}): {line}");
                std::process::exit(2);
            })
        })
        .collect();
    println!("| what | figure: median (min–max), runs | baseline | ratio | bar | met |");
    println!("|---|---|---|---|---|---|");
    for figure in &figures {
        let baseline = figure.baseline.map(|baseline| format!("{} {}", number(baseline), figure.unit));
        let ratio = figure.baseline.filter(|baseline| *baseline != 0.0).map(|baseline| figure.median / baseline);
        println!(
            "| {} | {} {} ({}–{}), {} | {} | {} | {} | {} |",
            figure.what,
            number(figure.median),
            figure.unit,
            number(figure.min),
            number(figure.max),
            figure.runs,
            baseline.unwrap_or_else(|| "–".into()),
            ratio.map_or_else(|| "–".into(), |ratio| format!("{ratio:.2}×")),
            figure.bar,
            if figure.met { "yes" } else { "**no**" }
        );
    }
    let met = figures.iter().filter(|figure| figure.met).count();
    println!("\n{met} of {} bars met", figures.len());
    let document = serde_json::to_string_pretty(&figures).expect("figures are JSON");
    std::fs::write(output, document + "\n").unwrap_or_else(|error| {
        eprintln!("error: cannot write `{output}`: {error}");
        std::process::exit(2);
    });
}
