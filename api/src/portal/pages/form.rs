//! A question page's fields, rendered by one template with the GOV.UK markup for text inputs,
//! textareas and radios: each field's label, hint and inline error, linked from the error
//! summary by its id.

use askama::Template;

use crate::portal::chrome::Chrome;

/// A page of questions, posted to `action`.
#[derive(Debug, Template)]
#[template(path = "portal/question.html")]
pub struct QuestionPage {
    /// The header.
    pub chrome: Chrome,
    /// Above the heading (the journey).
    pub caption: String,
    /// The page's heading.
    pub heading: String,
    /// Where the form posts.
    pub action: String,
    /// The back link.
    pub back: String,
    /// The questions.
    pub fields: Vec<Field>,
    /// Hidden `(name, value)` pairs the form carries besides the CSRF token.
    pub hidden: Vec<(String, String)>,
}

impl QuestionPage {
    /// Whether any answer was refused.
    pub fn has_errors(&self) -> bool {
        self.fields.iter().any(|f| f.error.is_some())
    }

    /// The error summary: a link to each refused field.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter_map(|f| f.error.as_ref().map(|e| (format!("#{}", f.id), e.clone())))
            .collect()
    }
}

/// How a field is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A one-line text input of a GOV.UK width class (`govuk-input--width-10`...).
    Text {
        /// The width class, or "" for full width.
        width: &'static str,
        /// `autocomplete`, or "" for none.
        autocomplete: &'static str,
        /// Whether numbers are expected (`inputmode="numeric"`).
        numeric: bool,
    },
    /// A textarea.
    Textarea,
    /// Radios: `(value, label)`.
    Radios(Vec<(String, String)>),
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its id and name.
    pub id: &'static str,
    /// Its label (or the radios' legend).
    pub label: String,
    /// Its hint, or "".
    pub hint: String,
    /// How it is answered.
    pub input: Input,
    /// Its answer so far.
    pub value: String,
    /// What is wrong with it.
    pub error: Option<String>,
}

impl Field {
    /// A text input.
    pub fn text(id: &'static str, label: &str, hint: &str, width: &'static str, value: &str) -> Self {
        Field {
            id,
            label: label.into(),
            hint: hint.into(),
            input: Input::Text { width, autocomplete: "", numeric: false },
            value: value.into(),
            error: None,
        }
    }

    /// A textarea.
    pub fn textarea(id: &'static str, label: &str, hint: &str, value: &str) -> Self {
        Field {
            id,
            label: label.into(),
            hint: hint.into(),
            input: Input::Textarea,
            value: value.into(),
            error: None,
        }
    }

    /// Radios.
    pub fn radios(
        id: &'static str,
        label: &str,
        hint: &str,
        options: Vec<(String, String)>,
        value: &str,
    ) -> Self {
        Field {
            id,
            label: label.into(),
            hint: hint.into(),
            input: Input::Radios(options),
            value: value.into(),
            error: None,
        }
    }

    /// With an `autocomplete` token.
    pub fn autocomplete(mut self, token: &'static str) -> Self {
        if let Input::Text { autocomplete, .. } = &mut self.input {
            *autocomplete = token;
        }
        self
    }

    /// Expecting a whole number.
    pub fn numeric(mut self) -> Self {
        if let Input::Text { numeric, .. } = &mut self.input {
            *numeric = true;
        }
        self
    }

    /// Whether it is a text input.
    pub fn is_text(&self) -> bool {
        matches!(self.input, Input::Text { .. })
    }
    /// Whether it is a textarea.
    pub fn is_textarea(&self) -> bool {
        matches!(self.input, Input::Textarea)
    }
    /// The text input's width class.
    pub fn width(&self) -> &'static str {
        match self.input {
            Input::Text { width, .. } => width,
            _ => "",
        }
    }
    /// The text input's autocomplete token.
    pub fn autocomplete_token(&self) -> &'static str {
        match self.input {
            Input::Text { autocomplete, .. } => autocomplete,
            _ => "",
        }
    }
    /// Whether the text input expects numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self.input, Input::Text { numeric: true, .. })
    }
    /// The radios: `(id, value, label, checked)`; the first radio's id is the field's, so the
    /// error summary's link reaches it.
    pub fn options(&self) -> Vec<(String, String, String, bool)> {
        match &self.input {
            Input::Radios(options) => options
                .iter()
                .enumerate()
                .map(|(i, (value, label))| {
                    let id = if i == 0 { self.id.to_owned() } else { format!("{}-{}", self.id, i + 1) };
                    (id, value.clone(), label.clone(), *value == self.value)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    /// `aria-describedby`: the hint and the error, where present.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.join(" ")
    }
}

/// Sets each field's error from `errors` (`(field id, message)`), keeping the first per field.
pub fn with_errors(fields: &mut [Field], errors: &[(String, String)]) {
    for field in fields.iter_mut() {
        field.error = errors.iter().find(|(id, _)| id == field.id).map(|(_, m)| m.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_radio_carries_the_fields_id_and_the_answer_is_checked() {
        let f = Field::radios(
            "sandbox",
            "Sandbox?",
            "",
            vec![("yes".into(), "Yes".into()), ("no".into(), "No".into())],
            "no",
        );
        assert_eq!(
            f.options(),
            [
                ("sandbox".into(), "yes".into(), "Yes".into(), false),
                ("sandbox-2".into(), "no".into(), "No".into(), true)
            ]
        );
    }

    #[test]
    fn hints_and_errors_describe_the_field() {
        let mut fields = [Field::text("cpu", "CPU", "in cores", "govuk-input--width-5", "")];
        assert_eq!(fields[0].described_by(), "cpu-hint");
        with_errors(&mut fields, &[("cpu".into(), "Enter the CPU".into()), ("cpu".into(), "second".into())]);
        assert_eq!(fields[0].error.as_deref(), Some("Enter the CPU"));
        assert_eq!(fields[0].described_by(), "cpu-hint cpu-error");
    }
}
