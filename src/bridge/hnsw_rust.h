// C ABI of the Rust core (src/ffi.rs). Every function catches Rust panics.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {
// Versions and distance kernels.
const char *hnsw_rs_version(void);
const char *hnsw_rs_simd_name(void);
float hnsw_rs_l2sq_f32(const float *a, const float *b, size_t n);
float hnsw_rs_l1_f32(const float *a, const float *b, size_t n);
double hnsw_rs_l2sq_f64(const double *a, const double *b, size_t n);
double hnsw_rs_l1_f64(const double *a, const double *b, size_t n);
void hnsw_rs_normalize_f32(const float *v, float *out, size_t n);
void hnsw_rs_normalize_f64(const double *v, double *out, size_t n);

// Index handle.
struct HnswRsIndex;
struct HnswStatus {
	int32_t code; // 0 ok, 1 invalid input, 2 internal error
	char message[480];
};
struct HnswParams {
	uint8_t metric; // 1 l2sq, 2 cosine, 3 ip
	int64_t dim;
	int64_t m;
	int64_t m0; // 0: default 2*M
	int64_t ef_construction;
	int64_t ef_search;
};
struct HnswStats {
	size_t count;
	size_t deleted;
	size_t retired;
	size_t slots;
	size_t layers;
	size_t memory_bytes;
};
uint8_t hnsw_rs_metric_code(const char *name);
HnswParams hnsw_rs_default_params(void);
int32_t hnsw_rs_params_check(HnswParams *params, HnswStatus *status);
HnswRsIndex *hnsw_rs_index_new(const HnswParams *params, HnswStatus *status);
void hnsw_rs_index_free(HnswRsIndex *index);
int32_t hnsw_rs_index_check_vector(const HnswRsIndex *index, const float *v, size_t dim, HnswStatus *status);
int32_t hnsw_rs_index_insert_batch(const HnswRsIndex *index, const uint64_t *labels, const float *vectors, size_t n,
                                   size_t dim, size_t threads, HnswStatus *status);
int32_t hnsw_rs_index_delete(const HnswRsIndex *index, uint64_t label);
int32_t hnsw_rs_index_retire(const HnswRsIndex *index, uint64_t label);
int32_t hnsw_rs_index_purge(const HnswRsIndex *index, uint64_t label);
size_t hnsw_rs_index_search(const HnswRsIndex *index, const float *q, size_t dim, size_t k, size_t ef, uint64_t *labels,
                            float *distances, HnswStatus *status);
size_t hnsw_rs_index_candidates(const HnswRsIndex *index, const float *q, size_t dim, size_t k, size_t ef, size_t cap,
                                uint64_t *labels, float *distances, HnswStatus *status);
void hnsw_rs_index_stats(const HnswRsIndex *index, HnswStats *out);
size_t hnsw_rs_index_compact(HnswRsIndex *index, size_t threads);
size_t hnsw_rs_index_reconnect(HnswRsIndex *index);
HnswParams hnsw_rs_index_params(const HnswRsIndex *index);

// Paged images: writing an index into fixed-size pages and reading it back.
struct HnswRsImage;
struct HnswRsReader;
HnswRsImage *hnsw_rs_image_new(const HnswRsIndex *index, size_t page_size, size_t *pages, HnswStatus *status);
size_t hnsw_rs_image_render(HnswRsImage *image, const HnswRsIndex *index, size_t page, uint8_t *out, size_t cap,
                            uint64_t *checksum, HnswStatus *status);
void hnsw_rs_image_free(HnswRsImage *image);
HnswRsReader *hnsw_rs_reader_new(const uint8_t *first, size_t len, size_t *pages, HnswStatus *status);
int32_t hnsw_rs_reader_add(HnswRsReader *reader, size_t page, const uint8_t *bytes, size_t len, uint64_t *checksum,
                           HnswStatus *status);
HnswRsIndex *hnsw_rs_reader_finish(HnswRsReader *reader, HnswStatus *status);
void hnsw_rs_reader_free(HnswRsReader *reader);
}
