//! One module per `cxr` subcommand; each exposes its clap arguments and a `run` function.

pub mod calibrate;
pub mod compare;
pub mod data;
pub mod eval;
pub mod explain;
pub mod predict;
pub mod segment;
pub mod serve;
pub mod train;
pub mod weights;

/// The model file a command was given, else the shipped TB model (`$CXR_MODEL` or
/// `models/cxr-tb-default.safetensors`), as `predict` and `explain` choose it.
pub fn model_or_shipped(model: Option<std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    match model {
        Some(model) => Ok(model),
        None => cxr_nn::classifier::default_model_path()
            .ok_or_else(|| cxr_nn::predict::PredictError::NoDefaultModel.into()),
    }
}

/// `err` and its causes, each cause added only when the text so far does not already say it:
/// library errors name their source in their own message (`path: reason`), and anyhow's `{:#}`
/// would print that reason twice.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_nn::model_file::ModelFileError;

    #[test]
    fn a_cause_already_in_the_message_is_said_once_and_context_keeps_its_cause() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let named = anyhow::Error::new(ModelFileError::Io {
            path: "m.safetensors".into(),
            source: io(),
        });
        assert_eq!(
            format!("{named:#}"),
            "m.safetensors: no such file: no such file"
        );
        assert_eq!(error_text(&named), "m.safetensors: no such file");
        let with_context = anyhow::Error::new(io()).context("reading m.safetensors");
        assert_eq!(
            error_text(&with_context),
            "reading m.safetensors: no such file"
        );
    }
}
