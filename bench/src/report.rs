//! The report: markdown tables, printed and written to docs/benchmarks.md.

/// A markdown table.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|", head.join(" | "));
    for _ in head {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// Milliseconds, to a precision that fits their size.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// KiB as MiB.
pub fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// Bytes as MB (10^6, as Lambda's limits are stated) and the exact count.
pub fn mb(bytes: u64) -> String {
    format!("{:.2} MB ({bytes} B)", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_a_header_rule_and_rows() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert_eq!(ms(0.1234), "0.123 ms");
        assert_eq!(mib(2048.0), "2.0 MiB");
    }
}
