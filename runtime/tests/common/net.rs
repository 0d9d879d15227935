//! The net tests' runner: each test body runs once per netpoll backend.
#![allow(dead_code)]

use std::time::Duration;

use goro_runtime::net::Backend;
use goro_runtime::Runtime;

/// Runs `body` as a goroutine on a `procs`-P runtime, once per backend.
pub fn each_backend<F>(procs: usize, body: F)
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    each_backend_with_slice(procs, None, body);
}

/// [`each_backend`], with the preemption slice set to `slice` if given.
pub fn each_backend_with_slice<F>(procs: usize, slice: Option<Duration>, body: F)
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    for backend in [Backend::Epoll, Backend::Uring] {
        let mut builder = Runtime::builder().procs(procs).netpoll(backend);
        if let Some(slice) = slice {
            builder = builder.preempt_slice(slice);
        }
        let runtime = builder.build().expect("build runtime");
        match runtime.block_on(|| goro_runtime::net::backend().expect("in a goroutine")) {
            Ok(kind) => assert_eq!(kind, backend),
            Err(error) => {
                assert_eq!(backend, Backend::Uring, "epoll must always work: {error}");
                println!("skipping io_uring: {error}");
                continue;
            }
        }
        let body = body.clone();
        runtime.block_on(body);
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}
