//! `cxr data`: check a data set for problems, and split it into a manifest CSV.
//! Exit codes of `check`: 0 no problems, 1 problems found, 2 the data set could not be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use cxr_core::dataset::check::DEFAULT_NEAR_DUPLICATE_BITS;
use cxr_core::dataset::{
    CheckOptions, CheckReport, ClassNames, Dataset, NEGATIVE, POSITIVE, PartCount, SplitPlan,
    check, write_manifest,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Count images per class and split, find unreadable files and duplicates.
    ///
    /// Exit code 0 when no problems are found; 1 when some are (unreadable files, identical
    /// or near-identical images in different splits or folds, identical files with different
    /// labels); 2 when the data set cannot be read at all.
    Check {
        #[command(flatten)]
        source: SourceArgs,
        /// Largest perceptual-hash distance (bits of 256) at which two images are near
        /// duplicates. On the Shenzhen set distinct X-rays are at least 46 apart, copies
        /// resized and re-encoded as JPEG at most 14.
        #[arg(long, default_value_t = DEFAULT_NEAR_DUPLICATE_BITS)]
        near_bits: u32,
    },
    /// Split a data set (seeded, stratified by class, patients kept together) into a
    /// manifest CSV that every cxr command reads.
    Split {
        #[command(flatten)]
        source: SourceArgs,
        /// Manifest to write (columns path,label,label_name,group,mask,split,fold).
        #[arg(long)]
        out: PathBuf,
        /// Share of images for validation [default: 0.2 without --folds].
        #[arg(long, conflicts_with = "folds")]
        val: Option<f64>,
        /// Share of images held out for testing (before any folds).
        #[arg(long, default_value_t = 0.0)]
        test: f64,
        /// Split the non-test images into K cross-validation folds instead of train/val.
        #[arg(long, value_name = "K")]
        folds: Option<usize>,
        /// Random seed: the same seed and data give the same split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// Where the data set is and how its classes are named.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Data set: a folder laid out as ROOT/{train,val,test}/{class}/, ROOT/{class}/, or with
    /// NLM names (CHNCXR_0001_0.png) in ROOT or ROOT/images; or a CSV manifest
    /// (path,label[,group,mask,split,fold]; e.g. the Shenzhen labels.csv).
    dir: PathBuf,
    /// Folder names and labels meaning "with pathology", comma-separated
    /// [default: abnormal,pathology,tb,tuberculosis,1].
    #[arg(long, value_delimiter = ',', conflicts_with = "classes")]
    positive: Vec<String>,
    /// Folder names and labels meaning "normal", comma-separated [default: normal,0].
    #[arg(long, value_delimiter = ',', conflicts_with = "classes")]
    negative: Vec<String>,
    /// More than two classes: their folder names or manifest labels, comma-separated, in
    /// label order (e.g. normal,tb,age-related); a class's index also matches.
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// With --classes: the classes a screening refers (counts as positive), comma-separated
    /// [default: every class but the first].
    #[arg(long, value_delimiter = ',', requires = "classes")]
    refer: Vec<String>,
}

impl SourceArgs {
    /// The classes these options describe; `fallback` when no class option is given.
    pub(crate) fn names_or(&self, fallback: &ClassNames) -> anyhow::Result<ClassNames> {
        if !self.classes.is_empty() {
            return ClassNames::listed_or_all_but_first(&self.classes, &self.refer)
                .context("--classes/--refer");
        }
        if self.negative.is_empty() && self.positive.is_empty() {
            return Ok(fallback.clone());
        }
        let default = ClassNames::default();
        let or_default = |given: &[String], label: usize| -> Vec<String> {
            if given.is_empty() {
                default.accepted(label).to_vec()
            } else {
                given.to_vec()
            }
        };
        Ok(ClassNames::binary(
            or_default(&self.negative, NEGATIVE),
            or_default(&self.positive, POSITIVE),
        ))
    }

    /// The data set, its classes read as these options say (binary by default).
    pub(crate) fn open(&self) -> anyhow::Result<Dataset> {
        Ok(self.open_with(&ClassNames::default())?.0)
    }

    /// The data set and the classes it is screened by: the options', or else those of the
    /// model file `model` (so a multi-class model needs no options).
    pub(crate) fn open_for_model(&self, model: &Path) -> anyhow::Result<(Dataset, ClassNames)> {
        let model_classes = cxr_nn::model_file::read_card(model)?
            .class_names()
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", model.display()))?;
        self.open_with(&model_classes)
    }

    /// The data set and its classes; `fallback` (a model's classes, say) when no class
    /// option is given.
    pub(crate) fn open_with(&self, fallback: &ClassNames) -> anyhow::Result<(Dataset, ClassNames)> {
        let names = self.names_or(fallback)?;
        let dataset = Dataset::open(&self.dir, &names).context("cannot read the data set")?;
        Ok((dataset, names))
    }
}

pub fn run(cmd: DataCommand, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        DataCommand::Check { source, near_bits } => run_check(&source, near_bits, json),
        DataCommand::Split {
            source,
            out,
            val,
            test,
            folds,
            seed,
        } => {
            let plan = SplitPlan {
                val: val.unwrap_or(if folds.is_some() { 0.0 } else { 0.2 }),
                test,
                folds,
                seed,
            };
            run_split(&source, &out, &plan, json)
        }
    }
}

fn run_check(source: &SourceArgs, near_bits: u32, json: bool) -> anyhow::Result<ExitCode> {
    let dataset = source.open()?;
    let bar = ProgressBar::new(dataset.items.len() as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}<{eta}]")
            .context("progress bar template")?,
    );
    bar.set_message("reading images");
    let options = CheckOptions {
        near_duplicate_bits: near_bits,
        ..CheckOptions::default()
    };
    let report = check(&dataset, &options, &|| bar.inc(1));
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_check(&report);
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_split(
    source: &SourceArgs,
    out: &Path,
    plan: &SplitPlan,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut dataset = source.open()?;
    dataset.assign_splits(plan)?;
    write_manifest(&dataset, out).context("cannot write the manifest")?;
    let parts = dataset.part_counts();
    if json {
        let summary = serde_json::json!({
            "manifest": out,
            "images": dataset.items.len(),
            "class_names": dataset.class_names,
            "parts": parts,
        });
        println!("{summary}");
    } else {
        println!("wrote {}: {} images", out.display(), dataset.items.len());
        print_parts(&dataset.class_names, &parts);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_parts(class_names: &[String], parts: &[PartCount]) {
    let mut header = format!("{:<16}", "split");
    for name in class_names {
        header += &format!(" {name:>10}");
    }
    println!("{header} {:>10}", "total");
    for part in parts {
        let name = match part.fold {
            Some(fold) => format!("{} fold {fold}", part.split.as_str()),
            None => part.split.as_str().to_string(),
        };
        let mut row = format!("{name:<16}");
        for count in &part.per_class {
            row += &format!(" {count:>10}");
        }
        println!("{row} {:>10}", part.per_class.iter().sum::<usize>());
    }
}

/// "a (3), b (1)" for a list of tallies.
fn list<T>(tallies: &[cxr_core::dataset::check::Tally<T>], show: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = tallies
        .iter()
        .map(|t| format!("{} ({})", show(&t.value), t.images))
        .collect();
    if shown.is_empty() {
        "-".to_string()
    } else {
        shown.join(", ")
    }
}

fn flags(cross_split: bool, labels_differ: bool) -> String {
    let mut flags = String::new();
    if cross_split {
        flags += " [across splits]";
    }
    if labels_differ {
        flags += " [labels differ]";
    }
    flags
}

fn print_check(report: &CheckReport) {
    let classes: Vec<String> = report
        .class_names
        .iter()
        .zip(&report.class_totals)
        .map(|(name, count)| format!("{count} {name}"))
        .collect();
    println!("data set: {} ({})", report.source.display(), report.layout);
    println!(
        "{} images: {}; {} with masks\n",
        report.images,
        classes.join(", "),
        report.masks
    );
    print_parts(&report.class_names, &report.parts);
    println!();
    println!(
        "sizes: {}",
        list(&report.sizes, |[w, h]| format!("{w}x{h}"))
    );
    println!(
        "bit depths: {}",
        list(&report.bit_depths, |bits| bits.to_string())
    );
    println!("formats: {}", list(&report.formats, |f| f.to_string()));

    println!("unreadable files: {}", report.unreadable.len());
    for file in &report.unreadable {
        println!("  {}: {}", file.path.display(), file.reason);
    }
    println!("sets of identical files: {}", report.exact_duplicates.len());
    for set in &report.exact_duplicates {
        let paths: Vec<String> = set.paths.iter().map(|p| p.display().to_string()).collect();
        println!(
            "  {}{}",
            paths.join(" = "),
            flags(set.cross_split, set.labels_differ)
        );
    }
    println!(
        "near-duplicate pairs (within {} of 256 bits): {}",
        report.near_duplicate_bits,
        report.near_duplicates.len()
    );
    for pair in &report.near_duplicates {
        println!(
            "  {} ~ {} ({} bits){}",
            pair.paths[0].display(),
            pair.paths[1].display(),
            pair.distance,
            flags(pair.cross_split, pair.labels_differ)
        );
    }
    println!();
    if report.ok() {
        println!("no problems found");
    } else {
        println!("problems:");
        for problem in &report.problems {
            println!("  {problem}");
        }
    }
}
