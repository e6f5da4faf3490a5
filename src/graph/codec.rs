//! How a graph keeps its vectors and measures distances to them: float32 vectors through the
//! metric's kernel, `int8` codes ([`ScalarQuantizer`]) whose per-dimension ranges are learned
//! from the first batch inserted, or `bit` codes ([`BinaryQuantizer`]) on centres learned from
//! it. Searches and inserts see only [`Query`], [`Hnsw::dist_to`] and [`Hnsw::dist_between`].

use super::Hnsw;
use crate::error::{Error, Result};
use crate::quantize::{BinaryQuantizer, BinaryQuery, Quantization, ScalarQuantizer, ScalarQuery};

/// Centres a `bit` index learns (k-means over its first batch).
pub(crate) const BIT_CENTRES: usize = 128;

/// The stored form of vectors, fixed once the first vector is stored.
#[derive(Clone, Debug)]
pub(crate) enum Codec {
    F32,
    Int8(ScalarQuantizer),
    Bit(BinaryQuantizer),
}

/// A query's prepared form for a coded index.
#[derive(Clone, Debug)]
pub(crate) enum Codes {
    Int8(ScalarQuery),
    Bit(BinaryQuery),
}

impl Codes {
    /// Estimated distance from the query to the vector `code` stands for.
    #[inline(always)]
    pub(crate) fn distance(&self, code: &[u8]) -> f32 {
        match self {
            Codes::Int8(q) => q.distance(code),
            Codes::Bit(q) => q.distance(code),
        }
    }
}

/// A query in the form distances to stored nodes need: its stored-form floats (normalized for
/// cosine) and, for a coded index, its prepared code-space form.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub(crate) floats: Vec<f32>,
    pub(crate) codes: Option<Codes>,
}

impl Query {
    /// The stored-form floats.
    pub fn floats(&self) -> &[f32] {
        &self.floats
    }
}

impl Hnsw {
    /// The codec, once known (float32 indexes from the start, coded ones after training).
    pub(crate) fn codec(&self) -> Option<&Codec> {
        self.codec.get()
    }

    /// Learns the code ranges from `sample` (row-major raw vectors) unless already known; the
    /// first call wins. Float32 indexes need no training.
    pub fn train(&self, sample: &[f32]) -> Result<()> {
        if self.codec.get().is_some() {
            return Ok(());
        }
        let dim = self.params.dim;
        if sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: sample.len(),
            });
        }
        let mut prepared = Vec::with_capacity(sample.len());
        let mut row = Vec::new();
        for v in sample.chunks_exact(dim) {
            self.prepare_into(v, &mut row)?;
            prepared.extend_from_slice(&row);
        }
        let codec = match self.params.quantization {
            Quantization::F32 => Codec::F32,
            Quantization::Int8 => Codec::Int8(ScalarQuantizer::train(&prepared, dim)?),
            Quantization::Bit => Codec::Bit(BinaryQuantizer::train(
                self.params.metric,
                &prepared,
                dim,
                BIT_CENTRES,
                self.params.seed,
            )?),
        };
        let _ = self.codec.set(codec);
        Ok(())
    }

    /// Sets the codec of an index being loaded (before any node is stored).
    pub(crate) fn install_codec(&self, codec: Codec) -> Result<()> {
        self.codec
            .set(codec)
            .map_err(|_| Error::Corrupt("the code ranges were set twice".into()))
    }

    /// Fills `q.codes` for the prepared floats in `q.floats` (nothing for float32).
    pub(crate) fn prepare_codes(&self, q: &mut Query) {
        q.codes = match self.codec.get() {
            Some(Codec::Int8(quantizer)) => Some(Codes::Int8(
                quantizer.prepare(self.params.metric, &q.floats),
            )),
            Some(Codec::Bit(quantizer)) => Some(Codes::Bit(quantizer.prepare(&q.floats))),
            _ => None,
        };
    }

    /// Validates `vector` and prepares it as a query (training the codes on it if none yet).
    pub(crate) fn query_into(&self, vector: &[f32], q: &mut Query) -> Result<()> {
        self.prepare_into(vector, &mut q.floats)?;
        if self.codec.get().is_none() {
            self.train(&q.floats)?;
        }
        self.prepare_codes(q);
        Ok(())
    }

    /// Distance from a prepared query to node `id`.
    #[inline(always)]
    pub(crate) fn dist_to(&self, q: &Query, id: u32) -> f32 {
        match &q.codes {
            None => self.dist.eval(&q.floats, self.store.vector(id)),
            Some(codes) => codes.distance(self.store.code(id)),
        }
    }

    /// Distance between two stored nodes.
    #[inline(always)]
    pub(crate) fn dist_between(&self, a: u32, b: u32) -> f32 {
        match self.codec.get() {
            Some(Codec::Int8(quantizer)) => quantizer.distance_between(
                self.params.metric,
                self.store.code(a),
                self.store.code(b),
            ),
            Some(Codec::Bit(quantizer)) => {
                quantizer.distance_between(self.store.code(a), self.store.code(b))
            }
            _ => self.dist.eval(self.store.vector(a), self.store.vector(b)),
        }
    }

    /// The stored bytes of a prepared vector: its floats' bytes, or its code.
    pub(crate) fn encode_into(&self, floats: &[f32], out: &mut Vec<u8>) {
        out.clear();
        match self.codec.get() {
            Some(Codec::Int8(quantizer)) => {
                out.resize(self.params.dim, 0);
                let clamped = quantizer.encode(floats, out);
                if clamped > 0 {
                    self.clamped
                        .fetch_add(clamped as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Some(Codec::Bit(quantizer)) => {
                out.resize(quantizer.code_bytes(), 0);
                quantizer.encode(floats, out);
            }
            // Native byte order: `NodeStore::vector` reads them back as floats in place.
            _ => out.extend(floats.iter().flat_map(|x| x.to_ne_bytes())),
        }
    }

    /// The stored bytes of a prepared query's vector (as `encode_into`, reusing the query's
    /// code-space form where the codec can).
    pub(crate) fn encode_query_into(&self, q: &Query, out: &mut Vec<u8>) {
        match (self.codec.get(), &q.codes) {
            (Some(Codec::Bit(quantizer)), Some(Codes::Bit(prepared))) => {
                out.clear();
                out.resize(quantizer.code_bytes(), 0);
                quantizer.encode_prepared(prepared, out);
            }
            _ => self.encode_into(&q.floats, out),
        }
    }

    /// The vector node `id` stands for: its floats, or its decoded code.
    pub(crate) fn node_floats(&self, id: u32, out: &mut Vec<f32>) {
        out.clear();
        match self.codec.get() {
            Some(Codec::Int8(quantizer)) => {
                out.resize(self.params.dim, 0.0);
                quantizer.decode(self.store.code(id), out);
            }
            Some(Codec::Bit(quantizer)) => {
                out.resize(self.params.dim, 0.0);
                quantizer.decode(self.store.code(id), out);
            }
            _ => out.extend_from_slice(self.store.vector(id)),
        }
    }

    /// Node `id` as a query (for repairs that search from a stored node).
    pub(crate) fn node_query(&self, id: u32) -> Query {
        let mut q = Query::default();
        self.node_floats(id, &mut q.floats);
        self.prepare_codes(&mut q);
        q
    }

    /// Vector components clamped to the learned code ranges so far (0 for float32).
    pub fn clamped_components(&self) -> u64 {
        self.clamped.load(std::sync::atomic::Ordering::Relaxed)
    }
}
