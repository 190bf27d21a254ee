//! Tables that fit: every table an answer prints goes through [`Table`],
//! which lays its columns out for a width (the terminal's, or `--width`)
//! by priority — the least important are truncated with `…` to their
//! minimum, then hidden — and wraps the last, free-text column (a summary,
//! a change, a reason) with a hanging indent. Without a width (a pipe, or
//! `--wide`) every value is written whole.
//!
//! Rows are written as they come: column widths are taken from a bounded
//! look-ahead of the first [`LOOK_AHEAD`] rows, so a table of a million
//! rows holds at most that many in memory. A later value wider than its
//! column is truncated to fit a width, or written whole (pushing the row
//! out of line) without one.

use std::io::{self, Write};

/// Rows read before the column widths are fixed.
pub const LOOK_AHEAD: usize = 256;

/// Spaces between two columns.
const GUTTER: usize = 2;

/// One column: its header, how much it matters, and how far it may shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    /// Higher is kept longer: the lowest priority shrinks (then hides) first.
    pub priority: u8,
    /// The narrowest it may be truncated to; `None`: never truncated (an
    /// index, a time), only hidden if `hide` allows.
    pub min: Option<usize>,
    /// Whether it may be left out entirely when the width is too small.
    pub hide: bool,
}

impl Column {
    /// A column that is never truncated nor hidden (an index, a time).
    pub const fn fixed(header: &'static str, priority: u8) -> Self {
        Column {
            header,
            priority,
            min: None,
            hide: false,
        }
    }

    /// A column that may be truncated down to `min` characters.
    pub const fn shrinks(header: &'static str, priority: u8, min: usize) -> Self {
        Column {
            header,
            priority,
            min: Some(min),
            hide: false,
        }
    }

    /// The same column, which may also be hidden.
    pub const fn or_hidden(self) -> Self {
        Column { hide: true, ..self }
    }
}

/// How a table is laid out: the width it must fit in (`None`: every value
/// whole), its indent, and whether its header is bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fit {
    pub width: Option<usize>,
    pub colour: bool,
    /// Spaces before every line (a table inside an indented block).
    pub indent: usize,
}

/// A table being written: the columns, then rows as they come.
pub struct Table<'a, W: Write> {
    out: &'a mut W,
    columns: Vec<Column>,
    /// Whether the last column is free text, wrapped to what is left.
    wraps: bool,
    fit: Fit,
    /// Rows read before the widths are fixed.
    ahead: Vec<Vec<String>>,
    /// Each column's width once fixed; `None` for a hidden column.
    widths: Option<Vec<Option<usize>>>,
}

impl<'a, W: Write> Table<'a, W> {
    /// A table whose last column is free text: truncated columns before
    /// it, and it wrapped to what is left of the width (at least its `min`).
    pub fn wrapping(out: &'a mut W, columns: &[Column], fit: Fit) -> Self {
        Self::new(out, columns, fit, true)
    }

    /// A table of short values only: no column wraps.
    pub fn plain(out: &'a mut W, columns: &[Column], fit: Fit) -> Self {
        Self::new(out, columns, fit, false)
    }

    fn new(out: &'a mut W, columns: &[Column], fit: Fit, wraps: bool) -> Self {
        Table {
            out,
            columns: columns.to_vec(),
            wraps,
            fit,
            ahead: Vec::new(),
            widths: None,
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) -> io::Result<()> {
        match &self.widths {
            Some(_) => self.write_row(&cells),
            None if self.ahead.len() < LOOK_AHEAD => {
                self.ahead.push(cells);
                Ok(())
            }
            None => {
                self.fix()?;
                self.write_row(&cells)
            }
        }
    }

    /// Writes what is still held (the header at least), and gives the
    /// writer back.
    pub fn finish(mut self) -> io::Result<&'a mut W> {
        if self.widths.is_none() {
            self.fix()?;
        }
        Ok(self.out)
    }

    /// Fixes the widths from the rows read so far, writes the header and
    /// those rows.
    fn fix(&mut self) -> io::Result<()> {
        let natural = self.natural();
        let widths = match self.fit.width {
            None => natural.into_iter().map(Some).collect(),
            Some(width) => layout(
                &self.columns,
                natural,
                width - width.min(self.fit.indent),
                self.wraps,
            ),
        };
        self.widths = Some(widths);
        let header: Vec<String> = self.columns.iter().map(|c| c.header.to_owned()).collect();
        let line = self.lines(&header).join("\n");
        let indent = " ".repeat(self.fit.indent);
        match self.fit.colour {
            true => writeln!(self.out, "{indent}\x1b[1m{}\x1b[0m", line.trim_start())?,
            false => writeln!(self.out, "{line}")?,
        }
        for row in std::mem::take(&mut self.ahead) {
            self.write_row(&row)?;
        }
        Ok(())
    }

    /// Each column's widest value among the header and the rows read.
    fn natural(&self) -> Vec<usize> {
        (0..self.columns.len())
            .map(|c| {
                self.ahead
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|v| v.chars().count())
                    .chain([self.columns[c].header.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn write_row(&mut self, cells: &[String]) -> io::Result<()> {
        for line in self.lines(cells) {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    /// The lines of one row: one, or more when its last column wraps.
    fn lines(&self, cells: &[String]) -> Vec<String> {
        let widths = self.widths.as_deref().unwrap_or_default();
        let shown: Vec<(usize, &str)> = widths
            .iter()
            .zip(
                cells
                    .iter()
                    .map(String::as_str)
                    .chain(std::iter::repeat("")),
            )
            .filter_map(|(w, cell)| w.map(|w| (w, cell)))
            .collect();
        let mut line = " ".repeat(self.fit.indent);
        let Some(((last_width, last), before)) = shown.split_last().map(|(l, b)| (*l, b)) else {
            return vec![line];
        };
        for (width, cell) in before {
            let cell = match self.fit.width {
                Some(_) => truncate(cell, *width),
                None => cell.to_string(),
            };
            let pad = width.saturating_sub(cell.chars().count());
            line.push_str(&cell);
            line.push_str(&" ".repeat(pad + GUTTER));
        }
        let start = line.chars().count();
        let rest = match (self.fit.width, self.wraps) {
            (Some(width), true) => wrap(last, width.saturating_sub(start).max(1)),
            (Some(_), false) => vec![truncate(last, last_width)],
            (None, _) => vec![last.to_owned()],
        };
        let mut lines = Vec::with_capacity(rest.len());
        for (i, part) in rest.into_iter().enumerate() {
            let lead = if i == 0 {
                line.clone()
            } else {
                " ".repeat(start)
            };
            lines.push(format!("{lead}{part}").trim_end().to_owned());
        }
        lines
    }
}

/// Each column's width within `width`: natural widths, then the least
/// important columns truncated to their minimum, then hidden, until the
/// row fits (the wrapped last column counting its `min`, or 20).
fn layout(
    columns: &[Column],
    natural: Vec<usize>,
    width: usize,
    wraps: bool,
) -> Vec<Option<usize>> {
    let mut widths: Vec<Option<usize>> = natural.into_iter().map(Some).collect();
    let last = columns.len().saturating_sub(1);
    let reserve = |widths: &[Option<usize>]| -> usize {
        let shown = widths.iter().flatten().count();
        let cells: usize = match wraps {
            true => {
                widths[..last].iter().flatten().sum::<usize>() + columns[last].min.unwrap_or(20)
            }
            false => widths.iter().flatten().sum(),
        };
        cells + GUTTER * shown.saturating_sub(1)
    };
    let mut order: Vec<usize> = (0..columns.len())
        .filter(|c| !wraps || *c != last)
        .collect();
    order.sort_by_key(|c| columns[*c].priority);
    for &c in &order {
        let excess = reserve(&widths).saturating_sub(width);
        if excess == 0 {
            return widths;
        }
        if let (Some(w), Some(min)) = (widths[c], columns[c].min) {
            widths[c] = Some(w.saturating_sub(excess).max(min).min(w));
        }
    }
    for &c in &order {
        if reserve(&widths) <= width {
            break;
        }
        if columns[c].hide {
            widths[c] = None;
        }
    }
    widths
}

/// `value` cut to `width` characters, its end replaced by `…` when cut.
pub fn truncate(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        cut.push('…');
    }
    cut
}

/// `text` broken into lines of at most `width` characters, at spaces where
/// it can (a word longer than a line is split).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        if len > 0 && len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        while word.len() > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        len += word.len();
        line.extend(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 4] = [
        Column::fixed("INDEX", 90),
        Column::shrinks("TYPE", 50, 6),
        Column::shrinks("NAMESPACE", 10, 4).or_hidden(),
        Column::shrinks("SUMMARY", 0, 12),
    ];

    fn render(rows: &[[&str; 4]], width: Option<usize>) -> String {
        let mut out = Vec::new();
        let fit = Fit {
            width,
            ..Fit::default()
        };
        let mut table = Table::wrapping(&mut out, &COLUMNS, fit);
        for row in rows {
            table.row(row.map(str::to_owned).to_vec()).unwrap();
        }
        table.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    const ROW: [&str; 4] = [
        "1234",
        "AllocationUpdateDesiredStatus",
        "production",
        "client=failed desired=run job=web group=api node=n-1 (Failed tasks)",
    ];

    #[test]
    fn without_a_width_every_value_is_whole_and_aligned() {
        let text = render(&[ROW, ["7", "X", "default", "short"]], None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "INDEX  TYPE                           NAMESPACE   SUMMARY"
        );
        assert!(lines[1].ends_with(ROW[3]), "{text}");
        assert_eq!(
            lines[2],
            "7      X                              default     short"
        );
    }

    #[test]
    fn at_a_width_columns_shrink_by_priority_and_the_last_wraps_under_itself() {
        let text = render(&[ROW], Some(40));
        for line in text.lines() {
            assert!(line.chars().count() <= 40, "{line:?} in\n{text}");
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "INDEX  TYPE           NAM…  SUMMARY");
        assert!(
            lines[1].starts_with("1234   AllocationUp…  pro…  client"),
            "{text}"
        );
        let start = lines[1].split("client").next().unwrap().chars().count();
        assert!(lines[2].starts_with(&" ".repeat(start)), "{text}");
        let summary: String = lines[1..]
            .iter()
            .map(|l| l.chars().skip(start).collect::<String>())
            .collect();
        assert_eq!(
            summary,
            ROW[3].replace(' ', ""),
            "the whole summary, wrapped: {text}"
        );
    }

    #[test]
    fn too_narrow_a_width_hides_the_columns_that_may_be_hidden() {
        let text = render(&[ROW], Some(30));
        assert!(
            !text.contains("NAMESPACE") && !text.contains("produ"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 30), "{text}");
    }

    #[test]
    fn values_are_truncated_with_an_ellipsis_and_wrapped_at_spaces() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
    }
}
