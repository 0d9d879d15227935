//! Spawning goroutines: [`go`] and [`Builder`].

use std::io;

use crate::sched::schedule::{spawn_here, SpawnError};
use crate::sched::task::{new_task, JoinHandle};

/// The message for spawning where there is no current runtime.
pub(crate) const NO_RUNTIME: &str = "goro::go called outside a goroutine: there is no current \
     runtime; start one with goro::run(..) or build a goro::Runtime and use Runtime::block_on \
     or Runtime::spawn";

/// Spawns a goroutine on the current runtime (Go's `go f()`).
///
/// # Panics
/// Outside a goroutine (use [`crate::run`] or [`crate::Runtime`]), and when
/// no stack can be mapped — at the `vm.max_map_count` ceiling the message
/// names the sysctl. [`Builder::spawn`] returns these as errors instead.
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(error) => panic!("{error}"),
    }
}

/// Configures a goroutine before spawning it (`std::thread::Builder`'s shape).
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine; the name appears in diagnostics such as the
    /// stack-overflow report and `goro::runtime::dump()` (whose copy keeps
    /// the first 48 bytes). The dump also shows where `spawn` (or `go`) was
    /// called: both are `#[track_caller]`.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack reservation in bytes (rounded up to whole pages, and to
    /// at least 16 KiB). Pages are committed only as the goroutine touches them.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the goroutine on the current runtime.
    ///
    /// # Errors
    /// - outside a goroutine (no current runtime), with a message saying to
    ///   use `goro::run` or `Runtime`;
    /// - when the stack cannot be mapped: at the `vm.max_map_count` ceiling
    ///   (each goroutine costs 2 mappings) the message names the sysctl.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (task, cell) = new_task(f);
        // SAFETY: `cell` comes from `new_task::<F, T>`. If the spawn fails,
        // dropping the handle (and the task, inside spawn_here) frees the cell.
        let handle = unsafe { JoinHandle::<T>::new(cell, 0) };
        let name = self.name.map(String::into_boxed_str);
        let location = std::panic::Location::caller();
        match spawn_here(task, name, self.stack_size, location) {
            Ok(id) => Ok(handle.with_id(id)),
            Err(SpawnError::NoRuntime) => Err(io::Error::other(NO_RUNTIME)),
            Err(SpawnError::Stack(error)) => Err(error),
        }
    }
}
