//! Aligned text tables for the terminal: a header row and rows of cells, each column as wide
//! as its widest cell. Every listing renders through here, so a second table (the scheduled
//! actions of `homehook status`) lines up like the first.

/// Renders `rows` under `headers`, two spaces between columns, no trailing spaces.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(w),
                None => widths.push(w),
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let text = render(
            &["NAME", "HEALTH"],
            &[
                vec!["a-long-connection".into(), "healthy".into()],
                vec!["b".into(), "reauth_needed".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME               HEALTH");
        assert_eq!(lines[1], "a-long-connection  healthy");
        assert_eq!(lines[2], "b                  reauth_needed");
    }
}
