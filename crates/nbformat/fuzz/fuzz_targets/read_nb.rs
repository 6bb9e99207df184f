//! Fuzz the `.nb` reader: `read` and `read_shared` must return Ok or Err, never panic, on
//! any bytes.
//!
//! Each input is read as is, and with every CRC recomputed (header and sections, following
//! docs/nb-format.md), so that mutations reach the program decoder and the graph rebuild
//! instead of stopping at the first checksum. The fixed bytes are also read in place without
//! the weights CRC (the predictor's default), and every in-place tensor is read back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Recompute every section CRC and the header CRC in place, where the table allows.
fn fix_checksums(b: &mut [u8]) -> Option<()> {
    let count = u32_at(b, 24)? as usize;
    if count > 256 {
        return None;
    }
    let end = 32 + 24 * count;
    if b.len() < end {
        return None;
    }
    for i in 0..count {
        let at = 32 + 24 * i;
        let (off, len) = (u64_at(b, at + 8)?, u64_at(b, at + 16)?);
        let stop = off.checked_add(len)?;
        if stop <= b.len() as u64 {
            let crc = crc32fast::hash(&b[off as usize..stop as usize]);
            b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = lithe_nbformat::header::header_crc(&b[..end]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let _ = lithe_nbformat::read(data);
    let mut fixed = data.to_vec();
    if fix_checksums(&mut fixed).is_some() {
        let _ = lithe_nbformat::read(&fixed);
    }
    let options = lithe_nbformat::ReadOptions { verify_weights: false };
    if let Ok((g, _)) = lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&fixed), &options) {
        for id in g.node_ids() {
            if let lithe_ir::Op::Const(t) = &g.node(id).op {
                let _ = t.view_in_place::<f32>().map(|v| v.sum());
                let _ = t.data();
            }
        }
    }
});
