//! The results table: each figure for linger and its baselines, and their ratios.

/// The baselines, in table order.
pub const BASELINES: [&str; 3] = ["raw pty", "dtach", "tmux"];

pub struct Row {
    scenario: String,
    linger: f64,
    /// One value per entry of [`BASELINES`]; `None` where the baseline has no such figure.
    baselines: [Option<f64>; 3],
    digits: usize,
}

/// One figure: linger's value and the baselines' (raw pty, dtach, tmux).
pub fn row(scenario: &str, linger: f64, baselines: [Option<f64>; 3], digits: usize) -> Row {
    let others: String = BASELINES
        .iter()
        .zip(baselines)
        .filter_map(|(name, v)| v.map(|v| format!(", {name} {v:.digits$}")))
        .collect();
    println!("  {scenario}: linger {linger:.digits$}{others}");
    Row {
        scenario: scenario.to_string(),
        linger,
        baselines,
        digits,
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        Some(_) => "n/a (÷0)".into(),
        None => "—".into(),
    }
}

pub fn print_table(rows: &[Row]) {
    println!();
    let names: Vec<String> = BASELINES.iter().map(|b| format!(" {b} |")).collect();
    let ratios: Vec<String> = BASELINES
        .iter()
        .map(|b| format!(" linger ÷ {b} |"))
        .collect();
    println!("| scenario | linger |{}{}", names.concat(), ratios.concat());
    println!("|---|---:|{}", "---:|".repeat(2 * BASELINES.len()));
    for r in rows {
        let d = r.digits;
        let cells: String = r
            .baselines
            .iter()
            .map(|v| match v {
                Some(v) => format!(" {v:.d$} |"),
                None => " — |".into(),
            })
            .collect();
        let ratios: String = r
            .baselines
            .iter()
            .map(|v| format!(" {} |", ratio(r.linger, *v)))
            .collect();
        println!("| {} | {:.d$} |{cells}{ratios}", r.scenario, r.linger);
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}
