// C ABI of the Rust core (src/ffi.rs). Every function catches Rust panics.
#pragma once

#include <stddef.h>

extern "C" {
const char *hnsw_rs_version(void);
const char *hnsw_rs_simd_name(void);
float hnsw_rs_l2sq_f32(const float *a, const float *b, size_t n);
float hnsw_rs_l1_f32(const float *a, const float *b, size_t n);
double hnsw_rs_l2sq_f64(const double *a, const double *b, size_t n);
double hnsw_rs_l1_f64(const double *a, const double *b, size_t n);
void hnsw_rs_normalize_f32(const float *v, float *out, size_t n);
void hnsw_rs_normalize_f64(const double *v, double *out, size_t n);
}
