//! Distance kernels: every SIMD set against the scalar reference, the scalar one against f64.

mod common;

use common::Rng;
use hnsw::distance::*;
use hnsw::Error;

fn random_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gaussian() * 3.0).collect()
}

const LENGTHS: &[usize] = &[
    0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 384, 768, 1000,
    1536,
];

// Every SIMD set must agree with the scalar reference within 1e-5 relative. For the inner
// product the scale is the sum of |a_i b_i| (the result itself can cancel to ~0).
#[test]
fn simd_kernels_match_scalar() {
    let sets = available_kernel_sets();
    let scalar = sets[0];
    assert_eq!(scalar.name(), "scalar");
    let mut rng = Rng::new(7);
    for &n in LENGTHS {
        for _ in 0..20 {
            let a = random_vec(&mut rng, n);
            let b = random_vec(&mut rng, n);
            let abs_dot: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            for set in &sets[1..] {
                let tol = |scale: f32| 1e-5 * scale.max(1e-30) + 1e-30;
                let (s, v) = (scalar.dot(&a, &b), set.dot(&a, &b));
                assert!(
                    (s - v).abs() <= tol(abs_dot),
                    "{} dot n={n}: {s} vs {v}",
                    set.name()
                );
                let (s, v) = (scalar.neg_dot(&a, &b), set.neg_dot(&a, &b));
                assert!(
                    (s - v).abs() <= tol(abs_dot),
                    "{} neg_dot n={n}",
                    set.name()
                );
                let (s, v) = (scalar.one_minus_dot(&a, &b), set.one_minus_dot(&a, &b));
                assert!(
                    (s - v).abs() <= tol(abs_dot + 1.0),
                    "{} 1-dot n={n}",
                    set.name()
                );
                let (s, v) = (scalar.l2sq(&a, &b), set.l2sq(&a, &b));
                assert!(
                    (s - v).abs() <= tol(s),
                    "{} l2sq n={n}: {s} vs {v}",
                    set.name()
                );
                let (s, v) = (scalar.l1(&a, &b), set.l1(&a, &b));
                assert!(
                    (s - v).abs() <= tol(s),
                    "{} l1 n={n}: {s} vs {v}",
                    set.name()
                );
            }
        }
    }
}

// The scalar reference itself against an f64 computation.
#[test]
fn scalar_kernels_match_f64_oracle() {
    let scalar = available_kernel_sets()[0];
    let mut rng = Rng::new(11);
    for &n in LENGTHS {
        let a = random_vec(&mut rng, n);
        let b = random_vec(&mut rng, n);
        let dot: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let abs: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 * y as f64).abs())
            .sum();
        let l2: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum();
        let l1: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum();
        assert!((scalar.dot(&a, &b) as f64 - dot).abs() <= 1e-5 * abs + 1e-30);
        assert!((scalar.l2sq(&a, &b) as f64 - l2).abs() <= 1e-5 * l2 + 1e-30);
        assert!((scalar.l1(&a, &b) as f64 - l1).abs() <= 1e-5 * l1 + 1e-30);
    }
}

#[test]
fn this_cpu_uses_a_simd_set_when_available() {
    let sets = available_kernel_sets();
    if std::env::var("HNSW_SIMD").is_err() {
        assert_eq!(kernels().name(), sets[sets.len() - 1].name());
    }
}

#[test]
fn cosine_prepare_normalizes_and_rejects_zero() {
    let mut v = vec![3.0, 4.0];
    Cosine.prepare(&mut v).unwrap();
    assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
    let mut z = vec![0.0; 5];
    assert_eq!(Cosine.prepare(&mut z), Err(Error::ZeroVector));
    // Components whose squares overflow f32 still normalize.
    let mut big = vec![3e30, 4e30];
    Cosine.prepare(&mut big).unwrap();
    assert!((big[0] - 0.6).abs() < 1e-6);
}

#[test]
fn metric_names_round_trip() {
    for m in MetricKind::ALL {
        assert_eq!(MetricKind::from_name(m.name()), Some(m));
        assert_eq!(MetricKind::from_code(m.code()), Some(m));
    }
    assert_eq!(MetricKind::from_name("COSINE"), Some(MetricKind::Cosine));
    assert_eq!(MetricKind::from_name("l2"), None);
}

#[test]
fn normalize_into_keeps_zero_vectors_zero() {
    let mut out = vec![1.0; 3];
    normalize_into(&[0.0, 0.0, 0.0], &mut out);
    assert_eq!(out, vec![0.0; 3]);
    normalize_into(&[0.0, 2.0, 0.0], &mut out);
    assert_eq!(out, vec![0.0, 1.0, 0.0]);
}
