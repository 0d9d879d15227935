//! The price of `goro::preempt::PreemptOffAllocator` (its module doc has
//! the why): one 64-byte `alloc` plus `dealloc`, on the bench thread,
//! through `std::alloc::System` bare (`alloc_64b_system`) and wrapped
//! (`alloc_64b_preempt_off`). The wrapper adds an `inc` and a `dec` of a
//! thread-local around each call; the difference between the two is its
//! whole cost. Go has no counterpart: its allocator is runtime code, which
//! is never async-preempted.
//!
//! `cargo bench --bench alloc` (about 8 s); `ci/bench.sh` prints it as
//! FIGURE lines.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use goro::preempt::PreemptOffAllocator;

static WRAPPED: PreemptOffAllocator<System> = PreemptOffAllocator::new(System);

fn alloc_dealloc(allocator: &impl GlobalAlloc, layout: Layout) {
    // SAFETY: a 64-byte layout, freed at once by the same allocator with the
    // same layout.
    unsafe {
        let block = allocator.alloc(black_box(layout));
        assert!(!block.is_null());
        allocator.dealloc(black_box(block), layout);
    }
}

fn allocators(c: &mut Criterion) {
    let layout = Layout::from_size_align(64, 8).unwrap();
    c.bench_function("alloc_64b_system", |b| {
        b.iter(|| alloc_dealloc(&System, layout))
    });
    c.bench_function("alloc_64b_preempt_off", |b| {
        b.iter(|| alloc_dealloc(&WRAPPED, layout))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = allocators
}
criterion_main!(benches);
