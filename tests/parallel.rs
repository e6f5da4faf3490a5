//! The shared parallel-for: every item exactly once, at most as many threads as the work keeps
//! busy (a small batch runs on the caller's thread), and the first error stops it.

use hnsw::parallel::{for_each_block, threads_for};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[test]
fn threads_are_capped_by_the_work() {
    assert_eq!(threads_for(1, 4, 16), 1);
    assert_eq!(threads_for(0, 4, 16), 1);
    assert_eq!(threads_for(9, 4, 16), 3);
    assert_eq!(threads_for(1_000, 4, 16), 16);
    assert_eq!(threads_for(1_000, 4, 0), 1);
}

#[test]
fn every_item_runs_once_on_the_threads_the_work_needs() {
    for (items, threads) in [(0usize, 4usize), (1, 16), (3, 16), (1_000, 3)] {
        let seen = Mutex::new(vec![0u32; items]);
        let workers = Mutex::new(HashSet::new());
        let result: Result<(), ()> = for_each_block(
            items,
            7,
            4,
            threads,
            || (),
            |_, range| {
                workers.lock().unwrap().insert(std::thread::current().id());
                for i in range {
                    seen.lock().unwrap()[i] += 1;
                }
                Ok(())
            },
        );
        result.unwrap();
        assert!(
            seen.into_inner().unwrap().iter().all(|&n| n == 1),
            "{items} items"
        );
        let workers = workers.into_inner().unwrap();
        assert!(
            workers.len() <= threads_for(items, 4, threads),
            "{items} items used {} threads",
            workers.len()
        );
        if threads_for(items, 4, threads) == 1 && items > 0 {
            assert!(
                workers.contains(&std::thread::current().id()),
                "one thread is the caller's"
            );
        }
    }
}

#[test]
fn the_first_error_stops_the_work() {
    let done = AtomicUsize::new(0);
    let result = for_each_block(
        10_000,
        1,
        1,
        2,
        || (),
        |_, range| {
            if range.start == 50 {
                return Err(range.start);
            }
            done.fetch_add(1, Ordering::Relaxed);
            Ok(())
        },
    );
    assert_eq!(result, Err(50));
    assert!(done.load(Ordering::Relaxed) < 10_000);
}
