//! HNSW approximate nearest-neighbour index: the Rust core of the DuckDB `hnsw` extension.
//!
//! Plain library code with no DuckDB types: distances (`distance`), the graph and its
//! lifecycle (`graph`, `insert`, `search`, `delete`), the storage format (`storage`), and the
//! C ABI the C++ bridge calls (`ffi`).

mod chunk_memory;
pub mod dataset;
pub mod delete;
pub mod distance;
pub mod error;
pub mod ffi;
pub mod graph;
pub mod hash;
pub mod insert;
pub mod paged;
pub mod params;
pub mod search;
pub mod storage;

pub use delete::CompactStats;
pub use distance::MetricKind;
pub use error::{Error, Result};
pub use graph::{Hnsw, NodeId};
pub use params::{Params, ParamsBuilder};
pub use search::{Neighbor, SearchScratch};

/// Version of this crate (and of the extension).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
