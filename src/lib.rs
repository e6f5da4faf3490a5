//! HNSW approximate nearest-neighbour index: the Rust core of the DuckDB `hnsw` extension.
//!
//! Plain library code with no DuckDB types, by concern: distances (`distance`), the graph's
//! storage and handle (`graph`), building it (`build`), searching it (`search`, and among the rows a predicate matched: `filter`), keeping it
//! healthy as rows change (`maintenance`), the storage format (`format`), compact codes for stored vectors (`quantize`) and exact re-ranking with the table's vectors (`rerank`), reading embedding files (`vector_file`), measuring and tuning (`benchmark`), and the C ABI the
//! C++ bridge calls (`ffi`). `parallel` is the one parallel-for they share.

pub mod benchmark;
mod build;
pub mod distance;
pub mod error;
pub mod ffi;
pub mod filter;
pub mod format;
pub mod graph;
pub mod hash;
pub mod maintenance;
pub mod parallel;
pub mod params;
pub mod quantize;
pub mod rerank;
pub mod search;
pub mod vector_file;

pub use benchmark::BenchPoint;
pub use distance::MetricKind;
pub use error::{Error, Result};
pub use filter::{FilterReport, FilterSettings, FilterStrategy, LabelFilter};
pub use graph::{Hnsw, NodeId};
pub use maintenance::{CompactStats, Health, LayerHealth, RetirementLog};
pub use params::{Params, ParamsBuilder};
pub use rerank::{Rerank, TableVectors};
pub use search::{Neighbor, SearchScratch};
pub use vector_file::{VectorFile, VectorFileKind};
