//! TF.js layers models: `model.json` with its binary shards, float32 or quantised (uint8/uint16
//! affine, float16), and the JavaScript-module wrapping nsfwjs ships (`model.min.js` + base64 shards).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::keras::{KerasTensor, KerasWeights};

#[derive(Debug, thiserror::Error)]
pub enum TfjsError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a TF.js layers model: {problem}")]
    Format { path: PathBuf, problem: String },
    #[error("{path}: weight `{name}`: {problem}")]
    Weight {
        path: PathBuf,
        name: String,
        problem: String,
    },
}

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "weightsManifest")]
    weights_manifest: Vec<WeightGroup>,
}

#[derive(Deserialize)]
struct WeightGroup {
    paths: Vec<String>,
    weights: Vec<WeightSpec>,
}

#[derive(Deserialize)]
struct WeightSpec {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    min: Option<f32>,
    scale: Option<f32>,
}

/// Reads a TF.js layers model's weights, keyed `layer/weight` as in Keras 2 (TF.js keeps Keras'
/// names). `path` is a `model.json`, or a `.js` module wrapping one whose shards are `.js`
/// modules of base64 next to it (`group1-shard1of6` -> `group1-shard1of6.min.js`).
pub fn read_tfjs_weights(path: &Path) -> Result<KerasWeights, TfjsError> {
    let wrapped = path.extension().is_some_and(|e| e == "js");
    let text = read_text(path)?;
    let json = if wrapped {
        js_literal_to_json(module_export(path, &text)?)
            .map_err(|problem| format_error(path, problem))?
    } else {
        text
    };
    let model: ModelJson =
        serde_json::from_str(&json).map_err(|e| format_error(path, e.to_string()))?;
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut weights = KerasWeights::new();
    for group in &model.weights_manifest {
        let mut data = Vec::new();
        for shard in &group.paths {
            data.extend(read_shard(directory, shard, wrapped)?);
        }
        let mut offset = 0;
        for spec in &group.weights {
            let tensor = decode_weight(path, spec, &data, &mut offset)?;
            weights.insert(spec.name.clone(), tensor);
        }
        if offset != data.len() {
            return Err(format_error(
                path,
                format!(
                    "shards hold {} bytes, the manifest describes {offset}",
                    data.len()
                ),
            ));
        }
    }
    Ok(weights)
}

fn format_error(path: &Path, problem: String) -> TfjsError {
    TfjsError::Format {
        path: path.to_owned(),
        problem,
    }
}

fn read_text(path: &Path) -> Result<String, TfjsError> {
    std::fs::read_to_string(path).map_err(|source| TfjsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_shard(directory: &Path, shard: &str, wrapped: bool) -> Result<Vec<u8>, TfjsError> {
    if !wrapped {
        let path = directory.join(shard);
        return std::fs::read(&path).map_err(|source| TfjsError::Io { path, source });
    }
    let path = directory.join(format!("{shard}.min.js"));
    let text = read_text(&path)?;
    let literal = module_export(&path, &text)?;
    let base64 = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format_error(&path, "the module does not export a string".into()))?;
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|e| format_error(&path, format!("bad base64: {e}")))
}

/// Dequantises one weight from the concatenated shards: `min + q * scale` for uint8/uint16
/// affine quantisation, half floats widened, float32 read as is (all little-endian).
fn decode_weight(
    path: &Path,
    spec: &WeightSpec,
    data: &[u8],
    offset: &mut usize,
) -> Result<KerasTensor, TfjsError> {
    let weight_error = |problem: String| TfjsError::Weight {
        path: path.to_owned(),
        name: spec.name.clone(),
        problem,
    };
    let count: usize = spec.shape.iter().product();
    let stored = spec
        .quantization
        .as_ref()
        .map_or(spec.dtype.as_str(), |q| &q.dtype);
    let width = match stored {
        "uint8" => 1,
        "uint16" | "float16" => 2,
        "float32" => 4,
        other => return Err(weight_error(format!("unsupported stored dtype `{other}`"))),
    };
    if spec.dtype != "float32" {
        return Err(weight_error(format!("unsupported dtype `{}`", spec.dtype)));
    }
    let end = count
        .checked_mul(width)
        .and_then(|bytes| offset.checked_add(bytes))
        .filter(|&end| end <= data.len())
        .ok_or_else(|| weight_error("runs past the end of the shards".into()))?;
    let bytes = &data[*offset..end];
    *offset = end;
    let affine = |q: f32| -> Result<f32, TfjsError> {
        let quantization = spec.quantization.as_ref();
        match (
            quantization.and_then(|q| q.min),
            quantization.and_then(|q| q.scale),
        ) {
            (Some(min), Some(scale)) => Ok(min + q * scale),
            _ => Err(weight_error(
                "integer quantisation without min and scale".into(),
            )),
        }
    };
    let values = match stored {
        "uint8" => bytes
            .iter()
            .map(|&q| affine(f32::from(q)))
            .collect::<Result<_, _>>()?,
        "uint16" => bytes
            .chunks_exact(2)
            .map(|b| affine(f32::from(u16::from_le_bytes([b[0], b[1]]))))
            .collect::<Result<_, _>>()?,
        "float16" => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    };
    Ok(KerasTensor {
        shape: spec.shape.clone(),
        values,
    })
}

/// The literal a bundled CommonJS module assigns to `exports` (`n.exports={...}` or
/// `n.exports="..."`), as source text.
fn module_export<'a>(path: &Path, js: &'a str) -> Result<&'a str, TfjsError> {
    let start = js
        .find("exports={")
        .or_else(|| js.find("exports=\""))
        .map(|i| i + "exports=".len())
        .ok_or_else(|| format_error(path, "no `exports=` literal in the module".into()))?;
    let length = literal_length(&js[start..])
        .ok_or_else(|| format_error(path, "the exported literal is not closed".into()))?;
    Ok(&js[start..start + length])
}

/// Length of the string or bracketed literal at the start of `text`.
fn literal_length(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Rewrites a minified JavaScript data literal as JSON: quotes bare keys, turns `!0`/`!1` into
/// `true`/`false`, single-quoted strings into double-quoted ones and `.5` into `0.5`.
fn js_literal_to_json(js: &str) -> Result<String, String> {
    let chars: Vec<char> = js.chars().collect();
    let mut out = String::with_capacity(js.len() + js.len() / 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != c {
                    match chars[i] {
                        '\\' if i + 1 < chars.len() => {
                            // `\'` is valid JS but not JSON; other escapes are the same in both.
                            if chars[i + 1] != '\'' {
                                out.push('\\');
                            }
                            out.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '"' => out.push_str("\\\""),
                        other => out.push(other),
                    }
                    i += 1;
                }
                if i == chars.len() {
                    return Err("unterminated string".into());
                }
                out.push('"');
                i += 1;
            }
            '!' if matches!(chars.get(i + 1), Some('0' | '1')) => {
                out.push_str(if chars[i + 1] == '0' { "true" } else { "false" });
                i += 2;
            }
            '.' if chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !out.ends_with(|c: char| c.is_ascii_digit()) =>
            {
                out.push_str("0.");
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '$'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let is_key = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&':');
                match word.as_str() {
                    _ if is_key => {
                        out.push('"');
                        out.push_str(&word);
                        out.push('"');
                    }
                    "true" | "false" | "null" => out.push_str(&word),
                    _ if word.starts_with(['e', 'E'])
                        && out.ends_with(|c: char| c.is_ascii_digit()) =>
                    {
                        out.push_str(&word); // exponent of a number such as `1e3`
                    }
                    _ => return Err(format!("unexpected identifier `{word}`")),
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_literal_becomes_json() {
        let js = r#"{a:!0,b:!1,c:.5,d:-.25,e:[1e-3,'it\'s',12.5],"f":null,g:{h:"x\"y"}}"#;
        let json = js_literal_to_json(js).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a":true,"b":false,"c":0.5,"d":-0.25,"e":[0.001,"it's",12.5],"f":null,"g":{"h":"x\"y"}})
        );
    }

    #[test]
    fn code_is_not_mistaken_for_data() {
        assert!(js_literal_to_json("{a:function(){}}").is_err());
    }

    #[test]
    fn module_export_finds_the_literal() {
        let js =
            r#"!function(a){x=a()}(function(){return function(n,i){n.exports={b:"}",c:[1]}}});"#;
        assert_eq!(
            module_export(Path::new("m.js"), js).unwrap(),
            r#"{b:"}",c:[1]}"#
        );
        let js = r#"n.exports="QUJD"},{}]"#;
        assert_eq!(module_export(Path::new("s.js"), js).unwrap(), r#""QUJD""#);
    }

    #[test]
    fn uint8_weights_are_dequantised_per_tensor() {
        let spec = WeightSpec {
            name: "dense/kernel".into(),
            shape: vec![3],
            dtype: "float32".into(),
            quantization: Some(Quantization {
                dtype: "uint8".into(),
                min: Some(-1.0),
                scale: Some(0.5),
            }),
        };
        let mut offset = 1;
        let tensor = decode_weight(Path::new("m.json"), &spec, &[9, 0, 2, 4], &mut offset).unwrap();
        assert_eq!(tensor.values, vec![-1.0, 0.0, 1.0]);
        assert_eq!(offset, 4);
        let mut offset = 2;
        assert!(decode_weight(Path::new("m.json"), &spec, &[9, 0, 2, 4], &mut offset).is_err());
    }
}
