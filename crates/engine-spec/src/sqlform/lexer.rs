//! The SQL-like form's tokens: words, strings, numbers, `${param}`, symbols, and the raw
//! text of a `WHERE` predicate up to its end, with the positions diagnostics point at.

use crate::diag::{Diagnostic, Span};

pub(super) struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Param(String),
    Pipe,
    Arrow,
    Sym(char),
    Eof,
}

impl Lexer {
    pub(super) fn new(src: &str) -> Self {
        Lexer {
            chars: src.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek_char(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    pub(super) fn skip_space(&mut self) {
        loop {
            match self.peek_char(0) {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('-') if self.peek_char(1) == Some('-') => {
                    while let Some(c) = self.peek_char(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    /// The next token and where it starts.
    pub(super) fn next(&mut self) -> Result<(Tok, Span), Diagnostic> {
        self.skip_space();
        let (line, col, start) = (self.line, self.col, self.pos);
        let span = |l: &Lexer| Span::new(line, col, (l.pos - start).max(1));
        let Some(c) = self.bump() else {
            return Ok((Tok::Eof, Span::new(line, col, 1)));
        };
        let tok = match c {
            '|' if self.peek_char(0) == Some('>') => {
                self.bump();
                Tok::Pipe
            }
            '=' if self.peek_char(0) == Some('>') => {
                self.bump();
                Tok::Arrow
            }
            '\'' => {
                let mut s = String::new();
                loop {
                    match self.bump() {
                        Some('\'') if self.peek_char(0) == Some('\'') => {
                            self.bump();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => {
                            return Err(Diagnostic::new(
                                Span::new(line, col, 1),
                                "unterminated string: a closing ' is missing",
                            ));
                        }
                    }
                }
                Tok::Str(s)
            }
            '$' if self.peek_char(0) == Some('{') => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        Some('}') => break,
                        Some(c) => s.push(c),
                        None => {
                            return Err(Diagnostic::new(
                                Span::new(line, col, 2),
                                "unterminated ${…}",
                            ));
                        }
                    }
                }
                Tok::Param(s)
            }
            c if c.is_ascii_digit()
                || (c == '-' && self.peek_char(0).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut s = c.to_string();
                while let Some(d) = self.peek_char(0) {
                    let exp_sign = (d == '-' || d == '+') && s.ends_with(['e', 'E']);
                    if d.is_ascii_alphanumeric() || d == '.' || d == '_' || exp_sign {
                        s.push(d);
                        self.bump();
                    } else {
                        break;
                    }
                }
                let clean = s.replace('_', "");
                if let Ok(i) = clean.parse::<i64>() {
                    Tok::Int(i)
                } else if let Ok(f) = clean.parse::<f64>() {
                    Tok::Float(f)
                } else {
                    return Err(Diagnostic::new(
                        span(self),
                        format!("`{s}` is not a number"),
                    ));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = c.to_string();
                while let Some(d) = self.peek_char(0) {
                    if d.is_alphanumeric() || d == '_' {
                        s.push(d);
                        self.bump();
                    } else {
                        break;
                    }
                }
                Tok::Ident(s)
            }
            '(' | ')' | ',' | ';' | '=' | '[' | ']' => Tok::Sym(c),
            other => {
                return Err(Diagnostic::new(
                    span(self),
                    format!("unexpected character `{other}`"),
                ));
            }
        };
        Ok((tok, span(self)))
    }

    /// Raw text of a SQL predicate: up to the next `|>`, `;` or `AS name` at the top level
    /// (outside quotes and parentheses), trimmed, with where it starts.
    pub(super) fn predicate(&mut self) -> Result<(String, Span), Diagnostic> {
        self.skip_space();
        let (line, col) = (self.line, self.col);
        let mut text = String::new();
        let mut depth = 0i32;
        let mut quoted = false;
        // Where the open quote and the unclosed parentheses start, for the message when the
        // file ends inside them (they would otherwise swallow the rest of it, WRITE included).
        let mut quote_at = (line, col);
        let mut quote_char = '\'';
        let mut open: Vec<(usize, usize)> = Vec::new();
        while let Some(c) = self.peek_char(0) {
            // A comment ends at the line's end and is not part of the predicate.
            if !quoted && c == '-' && self.peek_char(1) == Some('-') {
                while self.peek_char(0).is_some_and(|c| c != '\n') {
                    self.bump();
                }
                continue;
            }
            if !quoted && depth == 0 {
                if c == ';' || (c == '|' && self.peek_char(1) == Some('>')) {
                    break;
                }
                // `AS name` ends the predicate (SQL predicates never contain a bare AS).
                let at_word_start = text.is_empty() || text.ends_with(char::is_whitespace);
                if at_word_start
                    && matches!(c, 'A' | 'a')
                    && matches!(self.peek_char(1), Some('S' | 's'))
                    && self.peek_char(2).is_some_and(char::is_whitespace)
                {
                    break;
                }
            }
            match c {
                // A string ('…') or a quoted name ("…"): the other quote means nothing inside.
                '\'' | '"' if !quoted || c == quote_char => {
                    quoted = !quoted;
                    quote_char = c;
                    quote_at = (self.line, self.col);
                }
                '(' if !quoted => {
                    depth += 1;
                    open.push((self.line, self.col));
                }
                ')' if !quoted => {
                    if depth == 0 {
                        return Err(Diagnostic::new(
                            Span::new(self.line, self.col, 1),
                            "`)` without a `(` before it in the predicate",
                        ));
                    }
                    depth -= 1;
                    open.pop();
                }
                _ => {}
            }
            // Line breaks and indentation outside quotes are one space, as in the YAML form.
            if c.is_whitespace() && !quoted {
                if !text.ends_with(' ') {
                    text.push(' ');
                }
            } else {
                text.push(c);
            }
            self.bump();
        }
        if quoted {
            return Err(Diagnostic::new(
                Span::new(quote_at.0, quote_at.1, 1),
                "this quote is never closed: the predicate runs to the end of the file",
            ));
        }
        if let Some(&(l, c)) = open.last() {
            return Err(Diagnostic::new(
                Span::new(l, c, 1),
                "this `(` is never closed: the predicate runs to the end of the file",
            ));
        }
        let text = text.trim_end().to_string();
        if text.is_empty() {
            return Err(Diagnostic::new(
                Span::new(line, col, 1),
                "expected a SQL predicate after WHERE",
            ));
        }
        Ok((text.clone(), Span::new(line, col, text.len().max(1))))
    }
}
