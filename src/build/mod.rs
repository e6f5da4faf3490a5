//! Building the graph: inserting vectors (one at a time from any number of threads, or in
//! batches) and the neighbour selection heuristic that inserts and repairs share.

mod insert;
mod select;
