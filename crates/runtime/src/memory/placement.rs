//! Offset assignment: blocks with lifetimes packed into one arena.
//!
//! Greedy by size: blocks are placed largest first, each at the lowest 64-byte aligned
//! offset where it overlaps no already placed block whose lifetime overlaps its own. Large
//! blocks decide the arena size, so placing them first leaves the small ones to fill gaps.

use crate::RuntimeError;

/// Alignment of every offset in the arena, in bytes (a cache line; what SIMD loads want).
pub const ARENA_ALIGN: usize = 64;

/// A buffer to place: its size and the steps it is live for (both ends included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    /// Size in bytes (0 for empty tensors, which take no space).
    pub bytes: usize,
    /// The step that writes it first.
    pub first: usize,
    /// The step that reads it last.
    pub last: usize,
}

impl Block {
    /// True when both blocks are live at some step and both take space.
    pub fn conflicts(&self, other: &Block) -> bool {
        self.bytes > 0 && other.bytes > 0 && self.first <= other.last && other.first <= self.last
    }
}

/// The offset of every block (in the order given) and the arena size they need.
pub(crate) fn place(blocks: &[Block]) -> Result<(Vec<usize>, usize), RuntimeError> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| {
        let b = &blocks[i];
        (std::cmp::Reverse(b.bytes), b.first, i)
    });
    let mut offsets = vec![0usize; blocks.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(blocks.len());
    let mut arena = 0usize;
    // Reused between blocks: the (offset, end) of placed blocks live at the same time.
    let mut busy: Vec<(usize, usize)> = Vec::new();
    for i in order {
        let b = blocks[i];
        if b.bytes == 0 {
            continue;
        }
        busy.clear();
        busy.extend(
            placed.iter().filter(|&&j| blocks[j].conflicts(&b)).map(|&j| (offsets[j], offsets[j] + blocks[j].bytes)),
        );
        busy.sort_unstable();
        let mut at = 0usize;
        for &(start, end) in &busy {
            if at.checked_add(b.bytes).is_some_and(|e| e <= start) {
                break;
            }
            at = at.max(align_up(end)?);
        }
        let end = at.checked_add(b.bytes).ok_or_else(overflow)?;
        offsets[i] = at;
        arena = arena.max(end);
        placed.push(i);
    }
    Ok((offsets, arena))
}

/// `n` rounded up to [`ARENA_ALIGN`].
fn align_up(n: usize) -> Result<usize, RuntimeError> {
    n.checked_add(ARENA_ALIGN - 1).map(|m| m / ARENA_ALIGN * ARENA_ALIGN).ok_or_else(overflow)
}

fn overflow() -> RuntimeError {
    RuntimeError::Internal("the memory plan does not fit in the address space".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(bytes: usize, first: usize, len: usize) -> Block {
        Block { bytes, first, last: first + len }
    }

    #[test]
    fn disjoint_lifetimes_share_offset_zero() {
        let blocks = [block(1000, 0, 1), block(500, 2, 1), block(1000, 4, 0)];
        let (offsets, arena) = place(&blocks).unwrap();
        assert_eq!(offsets, vec![0, 0, 0]);
        assert_eq!(arena, 1000);
    }

    #[test]
    fn overlapping_lifetimes_stack_aligned() {
        // Placed largest first: c at 0, a after c (aligned), b fits nowhere lower.
        let blocks = [block(100, 0, 2), block(10, 1, 2), block(200, 0, 3)];
        let (offsets, arena) = place(&blocks).unwrap();
        assert_eq!(offsets, vec![256, 384, 0]);
        assert_eq!(arena, 394);
    }

    #[test]
    fn blocks_go_to_the_lowest_free_offset() {
        // a and c never live together (both at 0); b lives with both; d with a and b.
        let blocks = [block(128, 0, 1), block(64, 0, 3), block(128, 2, 1), block(64, 0, 0)];
        let (offsets, arena) = place(&blocks).unwrap();
        assert_eq!(offsets[0], 0);
        assert_eq!(offsets[2], 0);
        assert_eq!(offsets[1], 128);
        assert_eq!(offsets[3], 192);
        assert_eq!(arena, 256);
    }

    #[test]
    fn empty_blocks_take_no_space() {
        let (offsets, arena) = place(&[block(0, 0, 5), block(64, 0, 5)]).unwrap();
        assert_eq!(offsets, vec![0, 0]);
        assert_eq!(arena, 64);
    }

    proptest! {
        #[test]
        fn live_blocks_never_overlap(specs in proptest::collection::vec((0usize..5000, 0usize..30, 0usize..10), 0..60)) {
            let blocks: Vec<Block> = specs.iter().map(|&(b, f, l)| block(b, f, l)).collect();
            let (offsets, arena) = place(&blocks).unwrap();
            for (i, a) in blocks.iter().enumerate() {
                prop_assert_eq!(offsets[i] % ARENA_ALIGN, 0);
                prop_assert!(offsets[i] + a.bytes <= arena);
                for (j, b) in blocks.iter().enumerate().skip(i + 1) {
                    if a.conflicts(b) {
                        let disjoint = offsets[i] + a.bytes <= offsets[j] || offsets[j] + b.bytes <= offsets[i];
                        prop_assert!(disjoint, "blocks {i} {a:?} at {} and {j} {b:?} at {} overlap", offsets[i], offsets[j]);
                    }
                }
            }
            // No arena can be smaller than the bytes live at the busiest step.
            let peak = (0..40).map(|s| blocks.iter().filter(|b| b.first <= s && s <= b.last).map(|b| b.bytes).sum::<usize>()).max().unwrap_or(0);
            prop_assert!(arena >= peak);
            let end = blocks.iter().zip(&offsets).map(|(b, o)| o + b.bytes).max().unwrap_or(0);
            prop_assert_eq!(arena, end);
        }
    }
}
