//! The screening service behind `cxr serve`: an HTTP API (axum) and a web page over the same
//! models as `cxr predict`, with results kept in SQLite and inference on a bounded pool.
//!
//! [`build`] makes the router (tests drive it directly); [`serve`] binds and runs it until the
//! shutdown signal, then finishes the requests in flight.

pub mod api;
pub mod config;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod pool;
pub mod recent;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cxr_core::DecodeLimits;

pub use api::{AppState, router};
pub use config::{ConfigError, ServerConfig};
pub use engine::{Engine, EngineError};
pub use error::ApiError;

/// File name of the results database inside the data folder.
pub const DATABASE_FILE: &str = "results.sqlite";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot create the data folder {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the models, opens the results database and starts the worker pool.
pub fn build(config: ServerConfig) -> Result<Arc<AppState>, ServeError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let limits = DecodeLimits {
        min_side: config.min_side,
        max_pixels: config.max_pixels,
        max_file_bytes: config.max_upload_bytes as u64,
        ..DecodeLimits::default()
    };
    let engine = Arc::new(Engine::load(
        config.model.as_deref(),
        config.lungs.as_deref(),
        limits,
    )?);
    let store = store::Store::open(&config.data_dir.join(DATABASE_FILE))?;
    let pool = pool::Pool::start(
        Arc::clone(&engine),
        config.workers,
        config.queue,
        cxr_nn::predict::BATCH_SIZE,
    );
    Ok(Arc::new(AppState {
        engine,
        pool,
        store,
        recent: recent::Recent::new(config.recent_pictures),
        metrics: metrics::Metrics::default(),
        config,
    }))
}

/// Serves `state` on `listener` until `shutdown` completes; requests in flight are finished
/// (their jobs too) before this returns.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(Arc::clone(&state));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let pool_state = Arc::clone(&state);
    tokio::task::spawn_blocking(move || pool_state.pool.shut_down())
        .await
        .map_err(std::io::Error::other)?;
    Ok(())
}

/// Binds `state.config.bind`.
pub async fn listen(state: &AppState) -> Result<tokio::net::TcpListener, ServeError> {
    let addr = state.config.bind;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}
