//! Plain-text tables and number formatting.

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Padded on the right (names).
    Left,
    /// Padded on the left (numbers).
    Right,
}

/// One row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// Cells, one per column (missing cells are blank).
    Cells(Vec<String>),
    /// A horizontal rule across every column.
    Rule,
}

/// A table with a header row, rendered with columns padded to their widest cell and separated by
/// two spaces; trailing spaces are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            columns: columns.iter().map(|&(h, a)| (h.to_string(), a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row of cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Row::Cells(cells));
    }

    /// Appends a horizontal rule.
    pub fn rule(&mut self) {
        self.rows.push(Row::Rule);
    }

    /// The rendered table, one line per row (header, rule, rows), each ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| match r {
                        Row::Cells(c) => c.get(i).map(|s| s.chars().count()),
                        Row::Rule => None,
                    })
                    .chain([self.columns[i].0.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        let line = |cells: &[String]| {
            let padded: Vec<String> = self
                .columns
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, ((_, align), &w))| {
                    let cell = cells.get(i).map_or("", String::as_str);
                    match align {
                        Align::Left => format!("{cell:<w$}"),
                        Align::Right => format!("{cell:>w$}"),
                    }
                })
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
        let rule = format!("{}\n", "-".repeat(total));
        let mut out = line(&header);
        out.push_str(&rule);
        for row in &self.rows {
            match row {
                Row::Cells(cells) => out.push_str(&line(cells)),
                Row::Rule => out.push_str(&rule),
            }
        }
        out
    }
}

/// `8309384` → `8,309,384`.
pub fn thousands(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `8309384` → `8.31 M`.
pub fn millions(x: u64) -> String {
    format!("{:.2} M", x as f64 / 1e6)
}

/// `1361451008` → `1.361 G`.
pub fn giga(x: u64) -> String {
    format!("{:.3} G", x as f64 / 1e9)
}

/// A count with an SI prefix chosen by size: `1.361 G`, `212.5 M`, `55.3 k`, `512`.
pub fn si(x: u64) -> String {
    let v = x as f64;
    if v >= 1e9 {
        format!("{:.3} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        x.to_string()
    }
}

/// `(224, 192)` → `224x192`.
pub fn hw((h, w): (usize, usize)) -> String {
    format!("{h}x{w}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(8_309_384), "8,309,384");
        assert_eq!(thousands(110_960_872), "110,960,872");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn units() {
        assert_eq!(millions(8_309_384), "8.31 M");
        assert_eq!(giga(1_361_451_008), "1.361 G");
        assert_eq!(hw((224, 192)), "224x192");
        assert_eq!(si(1_361_451_008), "1.361 G");
        assert_eq!(si(212_480_000), "212.5 M");
        assert_eq!(si(55_296), "55.3 k");
        assert_eq!(si(512), "512");
    }

    #[test]
    fn renders_aligned_columns() {
        let mut t = Table::new(&[("name", Align::Left), ("n", Align::Right)]);
        t.row(vec!["a".into(), "1,000".into()]);
        t.row(vec!["longer".into(), "7".into()]);
        t.rule();
        t.row(vec!["total".into()]);
        let expected = "\
name        n
-------------
a       1,000
longer      7
-------------
total
";
        assert_eq!(t.render(), expected);
    }
}
