//! A statement as both backends run it: SQL text in the backend's
//! placeholder style and the values to bind to it, in order. SQL that reads
//! the same on SQLite and PostgreSQL is written once, with `{pN}` markers or
//! with placeholders handed out by [`Binds`], and each backend only binds
//! and runs it.

/// How a backend writes placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?`
    Question,
    /// `$1`, `$2`, …
    Numbered,
}

impl Placeholders {
    /// The placeholder of the `n`th value bound (counted from 1).
    pub fn nth(self, n: usize) -> String {
        match self {
            Placeholders::Question => "?".to_owned(),
            Placeholders::Numbered => format!("${n}"),
        }
    }

    /// Writes `template`'s `{pN}` markers in this style, in one pass.
    ///
    /// SQLite binds a bare `?` by its place in the text, so in that style
    /// the markers must appear as `{p1}`, `{p2}`, … each once and in order;
    /// a template that repeats or reorders them is a bug, caught in debug
    /// builds (every template runs in the tests).
    pub fn fill(self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        let mut expected = 1;
        while let Some(at) = rest.find("{p") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            match (
                after[..digits].parse::<usize>(),
                after[digits..].starts_with('}'),
            ) {
                (Ok(n), true) => {
                    debug_assert!(
                        self == Placeholders::Numbered || n == expected,
                        "marker {{p{n}}} where {{p{expected}}} was due: `?` binds in order"
                    );
                    expected = n + 1;
                    out.push_str(&self.nth(n));
                    rest = &after[digits + 1..];
                }
                _ => {
                    out.push_str("{p");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A value to bind, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

impl From<&str> for Bind {
    fn from(value: &str) -> Self {
        Bind::Text(value.to_owned())
    }
}

/// SQL in one backend's placeholder style, and what to bind to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl Statement {
    /// `template` with its `{pN}` markers written in `style`, and `binds`
    /// for them in order.
    pub fn new(template: &str, style: Placeholders, binds: Vec<Bind>) -> Self {
        Statement {
            sql: style.fill(template),
            binds,
        }
    }
}

/// Values bound one by one while a statement is written, each handing out
/// its placeholder.
#[derive(Debug)]
pub struct Binds {
    pub style: Placeholders,
    pub values: Vec<Bind>,
}

impl Binds {
    pub fn new(style: Placeholders) -> Self {
        Binds {
            style,
            values: Vec::new(),
        }
    }

    /// Binds `value` next; returns its placeholder.
    pub fn push(&mut self, value: Bind) -> String {
        self.values.push(value);
        self.style.nth(self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_take_either_placeholder_style() {
        assert_eq!(
            Placeholders::Numbered.fill("SELECT {p1}, {p2}, {p1}"),
            "SELECT $1, $2, $1"
        );
        assert_eq!(
            Placeholders::Question.fill("SELECT {p1}, {p2}"),
            "SELECT ?, ?"
        );
    }

    #[test]
    fn markers_past_nine_are_written_too() {
        let template: String = (1..=11).map(|n| format!("{{p{n}}} ")).collect();
        assert_eq!(
            Placeholders::Numbered.fill(&template),
            "$1 $2 $3 $4 $5 $6 $7 $8 $9 $10 $11 "
        );
    }

    #[test]
    #[should_panic(expected = "`?` binds in order")]
    fn a_repeated_marker_is_refused_where_placeholders_bind_in_order() {
        Placeholders::Question.fill("SELECT {p1}, {p1}");
    }

    #[test]
    fn binds_hand_out_placeholders_in_order() {
        let mut binds = Binds::new(Placeholders::Numbered);
        assert_eq!(binds.push(Bind::Int(1)), "$1");
        assert_eq!(binds.push("web".into()), "$2");
        assert_eq!(binds.values, [Bind::Int(1), Bind::Text("web".into())]);
    }
}
