//! Inference on a bounded pool: a fixed number of worker threads and a bounded number of
//! admitted jobs. Admission is refused (503) when full, so memory never grows with load.
//!
//! Workers take queued screenings in batches (up to the classifier's batch size) so that
//! concurrent clients share forward passes, as `cxr predict` batches files.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cxr_core::GrayImage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::engine::{Engine, Pictures, Screened};
use crate::error::ApiError;

/// One upload to screen.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// A screening request for the pool.
pub struct ScreenJob {
    pub upload: Upload,
    pub operating_point: Option<String>,
    pub with_lungs: bool,
    pub reply: oneshot::Sender<Result<Screened, ApiError>>,
}

/// A heat-map request for the pool.
pub struct HeatMapJob {
    pub pictures: Arc<Pictures>,
    pub reply: oneshot::Sender<Result<GrayImage, ApiError>>,
}

/// Work for the pool; each job answers on its own channel.
pub enum Job {
    Screen(ScreenJob),
    HeatMap(HeatMapJob),
}

impl Job {
    /// A client that gave up (timeout, closed connection) no longer waits for the answer.
    fn abandoned(&self) -> bool {
        match self {
            Job::Screen(job) => job.reply.is_closed(),
            Job::HeatMap(job) => job.reply.is_closed(),
        }
    }
}

/// A job with its admission ticket: the ticket is given back when the job is done.
struct Admitted {
    job: Job,
    _permit: OwnedSemaphorePermit,
}

pub struct Pool {
    sender: Mutex<Option<Sender<Admitted>>>,
    admission: Arc<Semaphore>,
    capacity: usize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    /// Starts `workers` threads (at least one) that admit at most `capacity` jobs at a time
    /// (running and waiting together).
    pub fn start(engine: Arc<Engine>, workers: usize, capacity: usize, batch: usize) -> Self {
        let (sender, receiver) = channel::<Admitted>();
        let receiver = Arc::new(Mutex::new(receiver));
        let handles = (0..workers.max(1))
            .map(|index| {
                let engine = Arc::clone(&engine);
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("cxr-worker-{index}"))
                    .spawn(move || work(&engine, &receiver, batch.max(1)))
                    .expect("the OS refused to start a worker thread")
            })
            .collect();
        Self {
            sender: Mutex::new(Some(sender)),
            admission: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
            workers: Mutex::new(handles),
        }
    }

    /// Jobs admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.admission.available_permits()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Admits `jobs` together, or refuses them all with 503 when there is no room for all.
    pub fn submit(&self, jobs: Vec<Job>) -> Result<(), ApiError> {
        let count = u32::try_from(jobs.len()).map_err(|_| ApiError::busy(1))?;
        if jobs.len() > self.capacity {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "batch-too-large",
                format!(
                    "{} images in one request; this server takes at most {}",
                    jobs.len(),
                    self.capacity
                ),
            ));
        }
        let mut permit = Arc::clone(&self.admission)
            .try_acquire_many_owned(count)
            .map_err(|_| ApiError::busy(1))?;
        let guard = self
            .sender
            .lock()
            .map_err(|_| ApiError::internal("worker pool poisoned"))?;
        let sender = guard.as_ref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                "the server is shutting down",
            )
        })?;
        for job in jobs {
            let one = permit.split(1).expect("one permit per admitted job");
            sender
                .send(Admitted { job, _permit: one })
                .map_err(|_| ApiError::internal("the worker pool has stopped"))?;
        }
        Ok(())
    }

    /// Stops taking jobs; workers finish those already admitted, then this returns.
    pub fn shut_down(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let handles = self
            .workers
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

/// A worker's loop: wait for a job, gather queued screenings into one batch, run, answer.
fn work(engine: &Engine, receiver: &Mutex<Receiver<Admitted>>, batch: usize) {
    loop {
        let jobs = {
            let Ok(receiver) = receiver.lock() else {
                return;
            };
            let Ok(first) = receiver.recv() else { return };
            let mut jobs = vec![first];
            while jobs.len() < batch {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            jobs
        };
        run(engine, jobs);
    }
}

fn run(engine: &Engine, jobs: Vec<Admitted>) {
    // Each job keeps its permit until answered, so admission counts it until then.
    let mut screens = Vec::new();
    for Admitted { job, _permit } in jobs {
        if job.abandoned() {
            continue;
        }
        match job {
            Job::HeatMap(job) => {
                let _ = job.reply.send(engine.heat_map(&job.pictures));
            }
            Job::Screen(job) => match engine.decode(&job.upload.bytes, &job.upload.name) {
                Ok(image) => screens.push((job, image, _permit)),
                Err(error) => {
                    let _ = job.reply.send(Err(error));
                }
            },
        }
    }
    // Requests in one batch may ask for different operating points or lung settings:
    // screen each group together.
    while let Some((first, _, _)) = screens.first() {
        let key = (first.operating_point.clone(), first.with_lungs);
        let (group, rest): (Vec<_>, Vec<_>) = screens
            .into_iter()
            .partition(|(job, _, _)| (job.operating_point.clone(), job.with_lungs) == key);
        screens = rest;
        let (jobs, images): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|(job, image, permit)| {
                let input = (job.upload.name.clone(), image, job.upload.sha256.clone());
                ((job, permit), input)
            })
            .unzip();
        let results = engine.screen(images, key.0.as_deref(), key.1);
        for ((job, _permit), result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}
