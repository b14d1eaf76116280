//! Which class a folder name or a manifest label stands for, and which classes a screening
//! refers. Binary by default (normal = 0, abnormal = 1); a listed set of classes for the rest.

/// Label index of images without pathology.
pub const NEGATIVE: usize = 0;
/// Label index of images with pathology.
pub const POSITIVE: usize = 1;

/// The classes of a data set: the names accepted for each (matched ignoring case; the first
/// is its display name) and whether a screening refers it, by label index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassNames {
    accepted: Vec<Vec<String>>,
    refer: Vec<bool>,
}

/// Why a class list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassListError {
    #[error("a class list needs at least two classes, got {0}")]
    TooFew(usize),
    #[error("class '{0}' is listed twice")]
    Duplicate(String),
    #[error("class names cannot be empty")]
    EmptyName,
    #[error("refer class '{name}' is not one of the classes ({classes})")]
    UnknownRefer { name: String, classes: String },
    #[error(
        "the refer list must name some classes but not all of them, or a screening has nothing to decide"
    )]
    ReferNothingOrAll,
}

impl Default for ClassNames {
    fn default() -> Self {
        Self::binary(
            owned(&["normal", "0"]),
            owned(&["abnormal", "pathology", "tb", "tuberculosis", "1"]),
        )
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

impl ClassNames {
    /// Two classes, normal (`negative` names) and abnormal (`positive` names, referred).
    pub fn binary(negative: Vec<String>, positive: Vec<String>) -> Self {
        Self {
            accepted: vec![negative, positive],
            refer: vec![false, true],
        }
    }

    /// The classes `names`, in label order; each also accepts its label index ("0", "1", ...)
    /// as a manifest value. A screening refers the classes named in `refer`.
    pub fn listed(names: &[String], refer: &[String]) -> Result<Self, ClassListError> {
        if names.len() < 2 {
            return Err(ClassListError::TooFew(names.len()));
        }
        for (i, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(ClassListError::EmptyName);
            }
            if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(ClassListError::Duplicate(name.clone()));
            }
        }
        let mut referred = vec![false; names.len()];
        for name in refer {
            let index = names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| ClassListError::UnknownRefer {
                    name: name.clone(),
                    classes: names.join(", "),
                })?;
            referred[index] = true;
        }
        if referred.iter().all(|&r| r) || !referred.iter().any(|&r| r) {
            return Err(ClassListError::ReferNothingOrAll);
        }
        Ok(Self {
            accepted: names
                .iter()
                .enumerate()
                .map(|(i, name)| vec![name.trim().to_string(), i.to_string()])
                .collect(),
            refer: referred,
        })
    }

    /// [`Self::listed`], referring every class but the first when `refer` is empty: the
    /// default of the recipe's `[classes]` and of `--classes`.
    pub fn listed_or_all_but_first(
        names: &[String],
        refer: &[String],
    ) -> Result<Self, ClassListError> {
        match refer {
            [] => Self::listed(names, names.get(1..).unwrap_or_default()),
            refer => Self::listed(names, refer),
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    /// Always false: a class set has at least two classes.
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// The display name of each class, by label index.
    pub fn display_names(&self) -> Vec<String> {
        self.accepted
            .iter()
            .map(|names| names.first().cloned().unwrap_or_default())
            .collect()
    }

    /// The names accepted for class `label` (empty for a label past the last class).
    pub fn accepted(&self, label: usize) -> &[String] {
        self.accepted.get(label).map_or(&[], Vec::as_slice)
    }

    /// Whether a screening refers images of class `label` (counts them as positive).
    pub fn refers(&self, label: usize) -> bool {
        self.refer.get(label).copied().unwrap_or(false)
    }

    /// Whether a screening refers each class, by label index.
    pub fn refer_mask(&self) -> &[bool] {
        &self.refer
    }

    /// The label a folder name or label value means, or `None` when it matches no class.
    pub fn label_of(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.accepted
            .iter()
            .position(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// All accepted names, for error messages.
    pub fn describe(&self) -> String {
        if self.accepted.len() == 2 && self.refer == [false, true] {
            return format!(
                "negative: {}; positive: {}",
                self.accepted[0].join("|"),
                self.accepted[1].join("|")
            );
        }
        self.accepted
            .iter()
            .map(|names| names.join("|"))
            .collect::<Vec<_>>()
            .join("; ")
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
        assert_eq!(names.display_names(), ["normal", "abnormal"]);
        assert!(names.refers(POSITIVE) && !names.refers(NEGATIVE));
    }

    #[test]
    fn custom_names_replace_defaults() {
        let names = ClassNames::binary(vec!["healthy".into()], vec!["sick".into()]);
        assert_eq!(names.label_of("HEALTHY"), Some(NEGATIVE));
        assert_eq!(names.label_of("normal"), None);
    }

    #[test]
    fn a_class_list_names_each_label_and_refers_the_chosen_ones() {
        let classes = owned(&["normal", "tb", "age-related"]);
        let names = ClassNames::listed(&classes, &owned(&["TB"])).expect("classes");
        assert_eq!(names.len(), 3);
        assert_eq!(names.label_of("Age-Related"), Some(2));
        assert_eq!(names.label_of("2"), Some(2));
        assert_eq!(names.label_of("abnormal"), None);
        assert_eq!(names.refer_mask(), [false, true, false]);
        assert_eq!(names.display_names(), classes);
        let by_default = ClassNames::listed_or_all_but_first(&classes, &[]).expect("default");
        assert_eq!(by_default.refer_mask(), [false, true, true]);
        let chosen = ClassNames::listed_or_all_but_first(&classes, &owned(&["tb"])).expect("tb");
        assert_eq!(chosen, names);
    }

    #[test]
    fn bad_class_lists_say_what_is_wrong() {
        let list =
            |names: &[&str], refer: &[&str]| ClassNames::listed(&owned(names), &owned(refer));
        assert_eq!(list(&["normal"], &[]), Err(ClassListError::TooFew(1)));
        assert_eq!(
            list(&["normal", "Normal"], &["normal"]),
            Err(ClassListError::Duplicate("Normal".into()))
        );
        assert!(matches!(
            list(&["normal", "tb"], &["covid"]),
            Err(ClassListError::UnknownRefer { .. })
        ));
        assert_eq!(
            list(&["normal", "tb"], &["normal", "tb"]),
            Err(ClassListError::ReferNothingOrAll)
        );
        assert_eq!(
            list(&["normal", "tb"], &[]),
            Err(ClassListError::ReferNothingOrAll)
        );
    }
}
