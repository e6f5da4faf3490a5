//! The labels a filtered search may return: the rows that match a predicate, as a bitmap over
//! the label range when that is compact, as a hash set when the labels are spread out.

use crate::graph::LabelHash;
use std::collections::HashSet;

/// Most bitmap words per label before the set switches to hashing (a bitmap over a sparse
/// range would cost more memory than the labels themselves).
const WORDS_PER_LABEL: usize = 4;
/// Bitmaps up to this many words are always fine, however sparse.
const SMALL_BITMAP_WORDS: usize = 1 << 12;

/// A set of labels, built once per query and read by every node the search visits.
pub struct LabelFilter {
    repr: Repr,
    count: usize,
}

enum Repr {
    Bits { base: u64, words: Vec<u64> },
    Hashed(HashSet<u64, LabelHash>),
}

impl LabelFilter {
    /// The set of `labels` (any order; repeats count once).
    pub fn from_labels(labels: &[u64]) -> LabelFilter {
        let (Some(&min), Some(&max)) = (labels.iter().min(), labels.iter().max()) else {
            return LabelFilter {
                repr: Repr::Bits {
                    base: 0,
                    words: Vec::new(),
                },
                count: 0,
            };
        };
        let span_words = ((max - min) / 64 + 1) as usize;
        if span_words <= SMALL_BITMAP_WORDS.max(WORDS_PER_LABEL * labels.len()) {
            let mut words = vec![0u64; span_words];
            let mut count = 0;
            for &label in labels {
                let bit = label - min;
                let word = &mut words[(bit / 64) as usize];
                let mask = 1u64 << (bit % 64);
                count += usize::from(*word & mask == 0);
                *word |= mask;
            }
            return LabelFilter {
                repr: Repr::Bits { base: min, words },
                count,
            };
        }
        let set: HashSet<u64, LabelHash> = labels.iter().copied().collect();
        LabelFilter {
            count: set.len(),
            repr: Repr::Hashed(set),
        }
    }

    /// Number of distinct labels in the set.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no label matches.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when `label` is in the set.
    #[inline(always)]
    pub fn contains(&self, label: u64) -> bool {
        match &self.repr {
            Repr::Bits { base, words } => {
                let Some(bit) = label.checked_sub(*base) else {
                    return false;
                };
                words
                    .get((bit / 64) as usize)
                    .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
            }
            Repr::Hashed(set) => set.contains(&label),
        }
    }

    /// Calls `f` with every label of the set (ascending for bitmaps).
    pub fn for_each(&self, mut f: impl FnMut(u64)) {
        match &self.repr {
            Repr::Bits { base, words } => {
                for (i, &word) in words.iter().enumerate() {
                    let mut w = word;
                    while w != 0 {
                        let bit = w.trailing_zeros() as u64;
                        f(base + 64 * i as u64 + bit);
                        w &= w - 1;
                    }
                }
            }
            Repr::Hashed(set) => set.iter().for_each(|&label| f(label)),
        }
    }
}
