//! `Params::check_vector` refuses exactly the vectors an index refuses, with the same message.

use hnsw::{Hnsw, MetricKind, Params};

#[test]
fn check_vector_agrees_with_the_index() {
    let cases: [(&[f32], bool); 6] = [
        (&[1.0, 2.0, 3.0], true),
        (&[0.0, 0.0, 0.0], true), // only cosine refuses it
        (&[1.0, f32::NAN, 3.0], false),
        (&[1.0, 2.0, f32::INFINITY], false),
        (&[1.0, 2.0], false),
        (&[1.0, 2.0, 3.0, 4.0], false),
    ];
    for metric in [MetricKind::L2sq, MetricKind::Cosine, MetricKind::Ip] {
        let params = Params::builder(metric, 3).build().unwrap();
        let index = Hnsw::new(params).unwrap();
        for (label, (v, ok)) in cases.iter().enumerate() {
            let checked = params.check_vector(v);
            let inserted = index.insert(label as u64, v);
            let want = *ok && !(metric == MetricKind::Cosine && v.iter().all(|&x| x == 0.0));
            assert_eq!(checked.is_ok(), want, "{metric:?} {v:?}");
            assert_eq!(inserted.is_ok(), want, "{metric:?} {v:?}");
            if let (Err(a), Err(b)) = (checked, inserted) {
                assert_eq!(a.to_string(), b.to_string());
            }
        }
    }
}
