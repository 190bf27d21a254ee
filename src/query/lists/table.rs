//! The fixed-width table the list answers write as their rows arrive:
//! each column has a width fixed up front (a wider value is cut with `…`),
//! the last takes what is left of [`WIDTH`], so no line is wider and no
//! row needs the others to be read first.

use std::io::{self, Write};

/// The widest line a list table writes.
pub const WIDTH: usize = 100;
/// Spaces between columns.
const GUTTER: usize = 2;

/// A column: its header and width; the last column's width is ignored.
pub type Column = (&'static str, usize);

/// `value` cut to `width` characters, with `…` marking a cut.
pub fn fit(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        return value.to_owned();
    }
    let kept: String = value.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// One line of cells under `columns`.
pub fn line(columns: &[Column], cells: &[String]) -> String {
    let mut out = String::new();
    let mut used = 0;
    for (i, ((_, width), cell)) in columns.iter().zip(cells).enumerate() {
        if i + 1 == columns.len() {
            out.push_str(&fit(cell, WIDTH.saturating_sub(used)));
        } else {
            let cell = fit(cell, *width);
            let pad = width - cell.chars().count() + GUTTER;
            out.push_str(&cell);
            out.push_str(&" ".repeat(pad));
            used += width + GUTTER;
        }
    }
    out.trim_end().to_owned()
}

/// Writes the header line (bold on a terminal).
pub fn header(out: &mut impl Write, columns: &[Column], colour: bool) -> io::Result<()> {
    let names: Vec<String> = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    let text = line(columns, &names);
    match colour {
        true => writeln!(out, "\x1b[1m{text}\x1b[0m"),
        false => writeln!(out, "{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_their_column_and_the_last_to_the_line() {
        let columns = [("ID", 4), ("JOB", 6), ("DESCRIPTION", 0)];
        let long = "x".repeat(200);
        let text = line(&columns, &["abcdefgh".into(), "web".into(), long.clone()]);
        assert!(text.starts_with("abc…  web     xxx"), "{text}");
        assert_eq!(text.chars().count(), WIDTH);
        assert!(text.ends_with("x…"));
        assert_eq!(
            line(&columns, &["a".into(), "b".into(), String::new()]),
            "a     b"
        );
    }
}
