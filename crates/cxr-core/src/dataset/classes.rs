//! Which class a folder name or a manifest label stands for (binary: normal = 0, abnormal = 1).
//! The accepted names are configurable and matched ignoring case.

/// Label index of images without pathology.
pub const NEGATIVE: usize = 0;
/// Label index of images with pathology.
pub const POSITIVE: usize = 1;

/// Display names used when the data set itself does not name its classes.
pub const DEFAULT_CLASS_NAMES: [&str; 2] = ["normal", "abnormal"];

/// The folder names and label values accepted for each class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassNames {
    pub negative: Vec<String>,
    pub positive: Vec<String>,
}

impl Default for ClassNames {
    fn default() -> Self {
        let owned = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
        Self {
            negative: owned(&["normal", "0"]),
            positive: owned(&["abnormal", "pathology", "tb", "tuberculosis", "1"]),
        }
    }
}

impl ClassNames {
    /// The label a folder name or label value means, or `None` when it matches neither class.
    pub fn label_of(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        let matches = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if matches(&self.negative) {
            Some(NEGATIVE)
        } else if matches(&self.positive) {
            Some(POSITIVE)
        } else {
            None
        }
    }

    /// All accepted names, for error messages.
    pub fn describe(&self) -> String {
        format!(
            "negative: {}; positive: {}",
            self.negative.join("|"),
            self.positive.join("|")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_ignoring_case() {
        let names = ClassNames::default();
        assert_eq!(names.label_of("Normal"), Some(NEGATIVE));
        assert_eq!(names.label_of("0"), Some(NEGATIVE));
        assert_eq!(names.label_of("TB"), Some(POSITIVE));
        assert_eq!(names.label_of(" Tuberculosis "), Some(POSITIVE));
        assert_eq!(names.label_of("pneumonia"), None);
    }

    #[test]
    fn custom_names_replace_defaults() {
        let names = ClassNames {
            negative: vec!["healthy".into()],
            positive: vec!["sick".into()],
        };
        assert_eq!(names.label_of("HEALTHY"), Some(NEGATIVE));
        assert_eq!(names.label_of("normal"), None);
    }
}
