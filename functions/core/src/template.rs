//! `{param}` templates of the vendor request an action makes: its path, query values, form
//! fields and JSON body. `{{` and `}}` stand for literal braces. (Spoken answers are minijinja
//! templates: see [`crate::answer`].)
//!
//! Parsed once when config loads, so a typo is a start-up error, not a failed action.

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{name}`: a declared parameter.
    Param(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTemplate {
    parts: Vec<Part>,
}

impl RequestTemplate {
    /// Parses `text`; the error says what is wrong in plain words.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!(
                                    "unclosed placeholder \"{{{name}\" (write {{{{ for a literal brace)"
                                ));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(placeholder(name)?);
                }
                '}' => return Err("stray \"}\" (write }} for a literal brace)".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// The template's parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The parameter names the template uses.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Param(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// If the whole template is one `{param}`, its name: such a value keeps its JSON type
    /// (a number stays a number) when it fills a body field.
    pub fn sole_param(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Param(name)] => Some(name),
            _ => None,
        }
    }

    /// Renders the template, asking `fill` for each parameter's text.
    pub fn render(&self, mut fill: impl FnMut(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(name) => out.push_str(&fill(name)),
            }
        }
        out
    }
}

fn placeholder(name: String) -> Result<Part, String> {
    let trimmed = name.trim();
    if is_identifier(trimmed) {
        Ok(Part::Param(trimmed.to_string()))
    } else {
        Err(format!(
            "\"{{{name}}}\" is not a parameter name (letters, digits, _)"
        ))
    }
}

/// Whether `s` is a name homehook accepts for actions, connections and parameters: 1 to 64
/// ASCII letters, digits, `_` or `-`, starting with a letter or digit. Such names are safe in a
/// URL path as they are.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_params_and_escapes() {
        let t = RequestTemplate::parse("{{x}} /rooms/{room}/set").expect("parses");
        assert_eq!(
            t.parts(),
            &[
                Part::Literal("{x} /rooms/".into()),
                Part::Param("room".into()),
                Part::Literal("/set".into()),
            ]
        );
        assert_eq!(t.render(|_| "Living".into()), "{x} /rooms/Living/set");
        assert_eq!(
            RequestTemplate::parse("{mode}").expect("ok").sole_param(),
            Some("mode")
        );
    }

    #[test]
    fn refuses_broken_templates() {
        for bad in ["{open", "close}", "{a b}", "{}", "{a{b}", "{/json/pointer}"] {
            assert!(RequestTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
