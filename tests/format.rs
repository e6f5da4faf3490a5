//! The paged image, the one storage format: round trips, incremental rewrites, and damaged,
//! truncated or foreign pages, checked against the original index.

mod common;

use common::{clustered, gaussian, image};
use hnsw::format::{ImageReader, ImageWriter};
use hnsw::{Hnsw, MetricKind, Params};

const PAGE: usize = 4096;

fn build(metric: MetricKind, data: &[f32], dim: usize) -> Hnsw {
    let index = Hnsw::new(Params::builder(metric, dim).build().unwrap()).unwrap();
    index.insert_numbered(data, 0, 2).unwrap();
    index
}

/// Every page of the index's image, with its checksum.
fn render_all(index: &Hnsw, page_size: usize) -> Vec<(Vec<u8>, u64)> {
    let mut writer = ImageWriter::new(index, page_size).unwrap();
    (0..writer.pages())
        .map(|p| {
            let mut page = vec![0xAAu8; page_size];
            let (len, checksum) = writer.render(index, p, &mut page).unwrap();
            page.truncate(len);
            (page, checksum)
        })
        .collect()
}

fn load(pages: &[(Vec<u8>, u64)]) -> hnsw::Result<Hnsw> {
    let mut reader = ImageReader::new(&pages[0].0)?;
    if reader.pages() != pages.len() {
        return Err(hnsw::Error::Corrupt("page count".into()));
    }
    for (i, (bytes, _)) in pages.iter().enumerate() {
        reader.add_page(i, bytes)?;
    }
    reader.finish()
}

#[test]
fn paged_image_round_trips_exactly() {
    let dim = 48;
    let data = clustered(3_000, dim, 8, 3);
    let mut index = build(MetricKind::Cosine, &data, dim);
    for i in (0..3_000).step_by(7) {
        index.delete(i);
    }
    index.compact(1);
    for i in (1..3_000).step_by(11) {
        index.delete(i);
    }
    // Reuse some freed slots so free, deleted and live slots are interleaved.
    index.insert_numbered(&data[..40 * dim], 10_000, 1).unwrap();
    let pages = render_all(&index, PAGE);
    assert!(
        pages.len() > 10,
        "a multi-page image ({} pages)",
        pages.len()
    );
    let copy = load(&pages).unwrap();
    assert_eq!(image(&copy), image(&index));
    assert_eq!(copy.len(), index.len());
    assert_eq!(copy.deleted_count(), index.deleted_count());
    for q in data.chunks_exact(dim).step_by(97) {
        assert_eq!(
            copy.search(q, 10, 32).unwrap(),
            index.search(q, 10, 32).unwrap()
        );
    }
    // The loaded index renders to the same pages.
    let again = render_all(&copy, PAGE);
    assert_eq!(again, pages);
}

#[test]
fn empty_and_large_page_images_round_trip() {
    let empty = Hnsw::new(Params::builder(MetricKind::L2sq, 384).build().unwrap()).unwrap();
    let pages = render_all(&empty, PAGE);
    assert_eq!(pages.len(), 1);
    assert!(load(&pages).unwrap().is_empty());

    // 384-d vectors with the page size DuckDB uses (262136 bytes).
    let data = gaussian(500, 384, 4);
    let index = build(MetricKind::Ip, &data, 384);
    let pages = render_all(&index, 262_136);
    assert_eq!(image(&load(&pages).unwrap()), image(&index));
}

#[test]
fn small_changes_rewrite_few_pages() {
    let dim = 256;
    let data = clustered(10_000, dim, 16, 5);
    let index = build(MetricKind::L2sq, &data[..9_900 * dim], dim);
    let before = render_all(&index, 65_536);
    index
        .insert_numbered(&data[9_900 * dim..], 9_900, 1)
        .unwrap();
    for label in [5u64, 500, 5_000] {
        index.delete(label);
    }
    let after = render_all(&index, 65_536);
    let changed = after
        .iter()
        .enumerate()
        .filter(|(i, page)| before.get(*i).is_none_or(|old| old.1 != page.1))
        .count();
    // 100 inserts touch up to ~3200 neighbour lists spread over all node pages, but the vector
    // pages (7/8 of the image at 256 dimensions) only change where the new rows went.
    assert!(
        changed * 4 < after.len(),
        "{changed} of {} pages changed after 100 inserts",
        after.len()
    );
    assert_eq!(image(&load(&after).unwrap()), image(&index));
}

#[test]
fn damaged_pages_are_rejected_without_panic() {
    let dim = 16;
    let data = gaussian(600, dim, 6);
    let index = build(MetricKind::L2sq, &data, dim);
    index.delete(17);
    let pages = render_all(&index, PAGE);
    let total: usize = pages.iter().map(|p| p.0.len()).sum();
    let mut tried = 0;
    for (p, (bytes, _)) in pages.iter().enumerate() {
        for pos in (0..bytes.len()).step_by(37).chain([0, bytes.len() - 1]) {
            let mut bad = pages.clone();
            bad[p].0[pos] ^= 0x10;
            let outcome = std::panic::catch_unwind(|| load(&bad).map(|_| ()));
            match outcome {
                Ok(Err(_)) => {}
                Ok(Ok(())) => panic!("flip in page {p} byte {pos} was accepted"),
                Err(_) => panic!("flip in page {p} byte {pos} panicked"),
            }
            tried += 1;
        }
    }
    assert!(tried > total / 40);
    // Missing, repeated and truncated pages.
    assert!(load(&pages[..pages.len() - 1]).is_err());
    let mut reader = ImageReader::new(&pages[0].0).unwrap();
    reader.add_page(0, &pages[0].0).unwrap();
    assert!(reader.add_page(0, &pages[0].0).is_err());
    assert!(reader.add_page(1, &pages[1].0[..10]).is_err());
    let mut reader = ImageReader::new(&pages[0].0).unwrap();
    assert!(
        reader.add_page(2, &pages[2].0).is_err(),
        "data page before the meta pages"
    );
    // Foreign bytes (another format's magic, or zeros) are not an image.
    let mut foreign = image(&index);
    foreign[..8].copy_from_slice(b"DKHNSW\0\x1a");
    assert!(ImageReader::new(&foreign).is_err());
    assert!(ImageReader::new(&[0u8; PAGE]).is_err());
}

#[test]
fn a_checksum_table_longer_than_one_page_is_checked() {
    // 3,000 × 128-d at 4 KiB pages: over 511 data pages, so the checksum table (8 bytes a page
    // after the 112-byte header) outgrows the first page and its rest comes last.
    let dim = 128;
    let data = clustered(3_000, dim, 8, 4);
    let index = build(MetricKind::L2sq, &data, dim);
    let pages = render_all(&index, PAGE);
    assert!(
        112 + 8 * (pages.len() - 1) > PAGE,
        "{} pages fit one",
        pages.len()
    );
    assert_eq!(image(&load(&pages).unwrap()), image(&index));
    let last = pages.len() - 1;
    for (page, pos) in [
        (0, 200),
        (0, PAGE - 1),
        (1, 5),
        (last / 2, 77),
        (last - 1, 3),
        (last, 0),
    ] {
        let mut bad = pages.clone();
        bad[page].0[pos] ^= 0x01;
        assert!(
            load(&bad).is_err(),
            "flip in page {page} byte {pos} was accepted"
        );
    }
    // Every data page arrived but the table's tail did not: nothing is built.
    let mut reader = ImageReader::new(&pages[0].0).unwrap();
    for (i, (bytes, _)) in pages[..last].iter().enumerate() {
        reader.add_page(i, bytes).unwrap();
    }
    assert!(reader.finish().is_err());
}

#[test]
fn growing_never_moves_stored_vectors() {
    // 128-d vectors, 4 KiB pages: 512-byte vector records, 8 per page. The index grows from 1,000
    // to 3,000 slots, 100 at a time; at every step each page that held only vectors stored
    // before the step must keep its place and checksum, whatever happened to the node records.
    // (A layout whose regions follow one another would move the vectors whenever the node
    // records outgrow their room.)
    let dim = 128;
    let data = clustered(3_000, dim, 8, 3);
    let index = build(MetricKind::L2sq, &data[..1_000 * dim], dim);
    let mut before = render_all(&index, PAGE);
    for start in (1_000..3_000).step_by(100) {
        let rows = &data[start * dim..(start + 100) * dim];
        index.insert_numbered(rows, start as u64, 1).unwrap();
        let after = render_all(&index, PAGE);
        let unchanged = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.1 == b.1)
            .count();
        let old_vector_pages = start * dim * 4 / PAGE - 1;
        assert!(
            unchanged >= old_vector_pages,
            "at {start} slots only {unchanged} of {} pages kept their checksum; {old_vector_pages} \
             pages hold only older vectors",
            after.len()
        );
        before = after;
    }
    assert_eq!(image(&load(&before).unwrap()), image(&index));
}

#[test]
fn every_single_byte_corruption_and_truncation_is_rejected_without_panic() {
    // A small image, exhaustively: every byte of every page flipped three ways, and the image
    // cut at every length (as stored, page after page: the last page short, later ones missing).
    let data = gaussian(60, 8, 2);
    let index = build(MetricKind::L2sq, &data, 8);
    index.delete(3);
    let pages = render_all(&index, PAGE);
    assert!(load(&pages).is_ok());
    let rejected = |bad: &[(Vec<u8>, u64)]| {
        matches!(
            std::panic::catch_unwind(|| load(bad).map(|_| ())),
            Ok(Err(_))
        )
    };
    let mut bad = pages.clone();
    for p in 0..pages.len() {
        for pos in 0..pages[p].0.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                bad[p].0[pos] ^= flip;
                assert!(
                    rejected(&bad),
                    "page {p} byte {pos} ^{flip:#x} was accepted or panicked"
                );
                bad[p].0[pos] ^= flip;
            }
        }
    }
    let total: usize = pages.iter().map(|p| p.0.len()).sum();
    for len in 0..total {
        let mut cut = Vec::new();
        let mut left = len;
        for (bytes, sum) in &pages {
            if left == 0 {
                break;
            }
            let take = left.min(bytes.len());
            cut.push((bytes[..take].to_vec(), *sum));
            left -= take;
        }
        assert!(
            matches!(std::panic::catch_unwind(|| load_or_empty(&cut)), Ok(Err(_))),
            "truncation to {len} of {total} bytes was accepted or panicked"
        );
    }
}

/// `load`, with an empty page list an error.
fn load_or_empty(pages: &[(Vec<u8>, u64)]) -> hnsw::Result<()> {
    if pages.is_empty() {
        return Err(hnsw::Error::Corrupt("no pages".into()));
    }
    load(pages).map(|_| ())
}
