//! Where a document is parsed (a flow-through request, an XSP answer):
//! small ones on the async worker that received them (the keep-alive fast
//! path: a typical AddUser is under 1 KiB and parses in 24 µs even in the
//! dev build), larger ones on tokio's blocking threads, at most
//! `limits.max_parallel_xml_parses` at once. A large or hostile document
//! then costs one blocking thread for its (linear, bounded) parse and never
//! holds a worker that other connections, or the ops listener's /healthz,
//! are waiting for. Callers over the bound wait for a permit without
//! holding a worker either.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::LimitsConfig;

/// Documents up to this size parse inline. Parsing is linear and bounded,
/// so even a hostile one costs little (about 3 µs per attribute in the
/// dev build, far less in release), and the keep-alive fast path keeps
/// its typical sub-KiB AddUser on the worker that read it.
pub const INLINE_PARSE_BYTES: usize = 32 * 1024;

/// Why an offloaded parse did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The runtime is shutting down and dropped the blocking task.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// The permits for parses on blocking threads.
#[derive(Debug, Clone)]
pub struct ParsePool {
    permits: Arc<Semaphore>,
    size: usize,
}

impl ParsePool {
    /// `limits.max_parallel_xml_parses` permits; 0 means half the cores,
    /// at least one, so parsing can never take every core from the async
    /// workers.
    pub fn new(limits: &LimitsConfig) -> ParsePool {
        let size = match limits.max_parallel_xml_parses {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        ParsePool {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many parses may run on blocking threads at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `parse` (of a document of `len` bytes) inline when the
    /// document is small, else on a blocking thread once a permit is free.
    /// The permit is held by the blocking task itself: a client that goes
    /// away while its document is parsed does not free a permit early.
    pub async fn run<R, F>(&self, len: usize, parse: F) -> Result<R, OffloadError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        if len <= INLINE_PARSE_BYTES {
            return Ok(parse());
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| OffloadError::ShuttingDown)?;
        metrics::counter!("bwgate_xml_parses_offloaded_total").increment(1);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            parse()
        });
        match task.await {
            Ok(result) => Ok(result),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(OffloadError::ShuttingDown),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn pool(n: usize) -> ParsePool {
        ParsePool::new(&LimitsConfig {
            max_parallel_xml_parses: n,
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn zero_means_half_the_cores_at_least_one() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(pool(0).size(), (cores / 2).max(1));
        assert_eq!(pool(3).size(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn small_documents_parse_inline_large_ones_elsewhere() {
        let worker = std::thread::current().id();
        let p = pool(1);
        let inline = p
            .run(INLINE_PARSE_BYTES, move || std::thread::current().id())
            .await
            .unwrap();
        assert_eq!(inline, worker);
        let offloaded = p
            .run(INLINE_PARSE_BYTES + 1, move || std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(offloaded, worker);
    }

    /// Eight large parses through a pool of two never run more than two at
    /// once, and the (single-threaded) runtime keeps running meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn at_most_the_pool_size_run_at_once() {
        let p = pool(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (p, running, most) = (p.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                p.run(INLINE_PARSE_BYTES + 1, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // The runtime's only thread is free while the parses sleep.
        let ticks = tokio::spawn(async {
            let mut n = 0;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                n += 1;
            }
            n
        });
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(ticks.await.unwrap(), 5);
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
