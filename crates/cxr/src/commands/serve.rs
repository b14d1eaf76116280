//! `cxr serve`: the screening service and its web page, with the shipped models by default.
//! Binds 127.0.0.1 unless told otherwise (then an API token is required); Ctrl-C stops it
//! after the requests in flight are answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cxr_server::ServerConfig;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// API token required on every API route (at least 16 characters).
    #[arg(long, env = "CXR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// TB model file [default: the shipped model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Lung model [default: the shipped lung model, when present].
    #[arg(long, conflicts_with = "no_lungs")]
    lungs: Option<PathBuf>,
    /// Run without a lung model (no lung check or outline; heat maps cover the whole image).
    #[arg(long)]
    no_lungs: bool,
    /// Folder for the results database (results.sqlite) and kept images.
    #[arg(long, default_value = "cxr-data")]
    data_dir: PathBuf,
    /// Also store every uploaded image (named by its sha256) under DATA_DIR/images.
    #[arg(long)]
    keep_images: bool,
    /// Inference threads (each forward pass already uses all cores).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Images admitted at once, running and waiting; beyond this, 503 with Retry-After.
    #[arg(long, default_value_t = 32)]
    queue: usize,
    /// Largest request body in MiB.
    #[arg(long, default_value_t = 64)]
    max_upload_mib: usize,
    /// Seconds a request may take, waiting in the queue included.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Smallest accepted image side in pixels.
    #[arg(long, default_value_t = 128)]
    min_side: usize,
}

pub fn run(args: ServeArgs, _json: bool) -> anyhow::Result<ExitCode> {
    let lungs = match (&args.lungs, args.no_lungs) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => cxr_nn::segmentation::default_model_path(),
        (None, true) => None,
    };
    let config = ServerConfig {
        bind: args.bind,
        token: args.token,
        data_dir: args.data_dir,
        keep_images: args.keep_images,
        model: args.model,
        lungs,
        workers: args.workers,
        queue: args.queue,
        max_upload_bytes: args.max_upload_mib.saturating_mul(1024 * 1024),
        request_timeout: Duration::from_secs(args.timeout),
        min_side: args.min_side,
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let state = cxr_server::build(config)?;
        let listener = cxr_server::listen(&state).await?;
        let address = listener.local_addr()?;
        eprintln!(
            "cxr serve: model {} ({}){}; results in {}",
            state.engine.model.name,
            &state.engine.model.sha256[..12],
            state
                .engine
                .lung_model
                .as_ref()
                .map_or(String::from(", no lung model"), |m| format!(
                    ", lungs {}",
                    m.name
                )),
            state
                .config
                .data_dir
                .join(cxr_server::DATABASE_FILE)
                .display(),
        );
        eprintln!("open http://{address}/ (Ctrl-C stops after the requests in flight)");
        cxr_server::serve(state, listener, async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping: finishing the requests in flight");
        })
        .await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
