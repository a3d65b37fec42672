//! Tokens of the label selector language.

use super::SelectorError;

/// One token; identifiers include the keywords `in` and `notin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    /// Stands for the end of input in error messages.
    End,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Bang => "!".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
            Token::End => "end of input".into(),
        }
    }
}

/// A token stream over one selector string, with one token of look-ahead.
pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    peeked: Option<Option<Token>>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(input: &'a str) -> Self {
        Self {
            input,
            pos: 0,
            peeked: None,
        }
    }

    pub(super) fn peek(&mut self) -> Option<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan());
        }
        self.peeked.as_ref().and_then(Option::as_ref)
    }

    #[allow(clippy::should_implement_trait)]
    pub(super) fn next(&mut self) -> Option<Token> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.scan(),
        }
    }

    /// A syntax error at `token`.
    pub(super) fn error(&self, token: &Token, reason: &'static str) -> SelectorError {
        SelectorError::Syntax {
            selector: self.input.to_string(),
            token: token.text(),
            reason,
        }
    }

    fn scan(&mut self) -> Option<Token> {
        let rest = &self.input[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let mut chars = trimmed.chars();
        let c = chars.next()?;
        let two = |next: char| trimmed[c.len_utf8()..].starts_with(next);
        let (token, len) = match c {
            '!' if two('=') => (Token::NotEq, 2),
            '!' => (Token::Bang, 1),
            '=' if two('=') => (Token::DoubleEq, 2),
            '=' => (Token::Eq, 1),
            '>' => (Token::Gt, 1),
            '<' => (Token::Lt, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            _ => {
                let end = trimmed
                    .find(|c: char| c.is_whitespace() || "!=><(),".contains(c))
                    .unwrap_or(trimmed.len());
                (Token::Ident(trimmed[..end].to_string()), end)
            }
        };
        self.pos += len;
        Some(token)
    }
}
