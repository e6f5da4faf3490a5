//! Core benchmark driver (run by scripts/bench/core.py as `cargo bench --bench core -- ...`,
//! which runs hnswlib on the same files in the same run). Reads raw little-endian f32 data and queries and u32 ground truth,
//! builds with each thread count, then sweeps ef single-threaded. Prints one JSON object per
//! line.
//!
//! cargo bench --bench core -- --data F --queries F --truth F --dim D --k K --threads 1,2 --ef 16,32,64
//!                 [--metric l2sq] [--m 16] [--ef-construction 128] [--repeats 1]
//!                 [--save INDEX] [--load INDEX (instead of --threads)] [--no-relink]

use hnsw::{Hnsw, MetricKind, Params, SearchScratch};
use std::time::Instant;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn read_u32(path: &str) -> Vec<u32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn list(s: &str) -> Vec<usize> {
    s.split(',')
        .map(|x| x.trim().parse().expect("number list"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let need = |name: &str| arg(name).unwrap_or_else(|| panic!("missing {name}"));
    let dim: usize = need("--dim").parse().unwrap();
    let k: usize = need("--k").parse().unwrap();
    let metric = MetricKind::from_name(&arg("--metric").unwrap_or("l2sq".into())).expect("metric");
    let m: usize = arg("--m").map_or(16, |v| v.parse().unwrap());
    let efc: usize = arg("--ef-construction").map_or(128, |v| v.parse().unwrap());
    let repeats: usize = arg("--repeats").map_or(1, |v| v.parse().unwrap());
    let data = read_f32(&need("--data"));
    let queries = read_f32(&need("--queries"));
    let truth = read_u32(&need("--truth"));
    let nq = queries.len() / dim;
    let params = Params::builder(metric, dim)
        .m(m)
        .ef_construction(efc)
        .build()
        .unwrap();

    let mut index = arg("--load").map(|path| {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        hnsw::format::read_image(&bytes).expect("saved index")
    });
    let threads = arg("--threads").map_or(Vec::new(), |t| list(&t));
    for threads in threads {
        let mut built = Hnsw::new(params).unwrap();
        let start = Instant::now();
        built.insert_numbered(&data, 0, threads).unwrap();
        // The database build relinks unreachable nodes when it finishes; so does this one.
        let relinked = if args.iter().any(|a| a == "--no-relink") {
            0
        } else {
            built.relink()
        };
        let secs = start.elapsed().as_secs_f64();
        eprintln!("relinked {relinked}");
        println!(
            "{{\"kind\":\"build\",\"threads\":{threads},\"seconds\":{secs:.4},\"memory_bytes\":{},\"simd\":\"{}\"}}",
            built.memory_bytes(),
            hnsw::distance::kernels().name()
        );
        index = Some(built);
    }
    let index = index.expect("--threads or --load");
    if let Some(path) = arg("--save") {
        std::fs::write(
            &path,
            hnsw::format::write_image(&index, 1 << 16).expect("image"),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    let mut scratch = SearchScratch::new();
    let mut out = Vec::with_capacity(k);
    for ef in arg("--ef").map_or(Vec::new(), |e| list(&e)) {
        // One warm-up pass, then the timed pass.
        for q in queries.chunks_exact(dim).take(100) {
            index.search_with(&mut scratch, q, k, ef, &mut out).unwrap();
        }
        // Timed passes (the fastest counts), then an untimed pass that scores recall.
        let mut secs = f64::INFINITY;
        for _ in 0..repeats.max(1) {
            let start = Instant::now();
            for q in queries.chunks_exact(dim) {
                index.search_with(&mut scratch, q, k, ef, &mut out).unwrap();
                std::hint::black_box(&out);
            }
            secs = secs.min(start.elapsed().as_secs_f64());
        }
        let mut hits = 0usize;
        let counted = scratch.distance_count();
        for (qi, q) in queries.chunks_exact(dim).enumerate() {
            index.search_with(&mut scratch, q, k, ef, &mut out).unwrap();
            let want = &truth[qi * k..(qi + 1) * k];
            hits += out
                .iter()
                .filter(|n| want.contains(&(n.label as u32)))
                .count();
        }
        println!(
            "{{\"kind\":\"search\",\"ef\":{ef},\"qps\":{:.1},\"recall\":{:.5},\"distances\":{:.1}}}",
            nq as f64 / secs,
            hits as f64 / (nq * k) as f64,
            (scratch.distance_count() - counted) as f64 / nq as f64
        );
    }
}
