//! No heap allocation per inference after the first: a counting global allocator around
//! [`repvgg::Cpu`] runs.
//!
//! A test binary of its own: a `#[global_allocator]` counts every allocation of the process,
//! so the tests of the main integration binary, running in parallel, would be counted too.

use reparam_tensor::Tensor;
use reparam_tensor::rng::SplitMix64;
use repvgg::graph::Form;
use repvgg::{Config, Cpu, CpuOptions, Engine, Graph, TrainNet};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations and reallocations on every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is an atomic and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn runs_after_the_first_allocate_nothing() {
    let config = Config::official("a0").expect("a0");
    let train = TrainNet::random(&config, 7);
    let mut rng = SplitMix64::new(3);
    let shape = [2, 3, 64, 48];
    let input = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0)).unwrap();
    for form in [Form::Plain, Form::MultiBranch] {
        let graph = Graph::deployed(&train, form).expect("graph");
        for threads in [1, 2] {
            let options = CpuOptions {
                threads: Some(threads),
                input_hw: (64, 48),
                ..CpuOptions::default()
            };
            let mut engine = Cpu::new(&graph, &options).expect("engine");
            let first = engine.run(&input).expect("first run").logits.clone();
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for _ in 0..10 {
                let out = engine.run(&input).expect("run");
                assert_eq!(out.logits, first);
            }
            let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
            assert_eq!(
                allocated, 0,
                "{form} on {threads} threads: {allocated} allocations in 10 runs after the first"
            );
        }
    }
    // The counter does count: a new input shape plans a new arena.
    let graph = Graph::deployed(&train, Form::Plain).expect("graph");
    let mut engine = Cpu::new(&graph, &CpuOptions::default()).expect("engine");
    engine.run(&input).expect("run");
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let other = Tensor::filled([1, 3, 32, 32], 0.5).unwrap();
    engine.run(&other).expect("run");
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before);
}
