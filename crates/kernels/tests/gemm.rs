//! The generic f32 GEMM microkernel through the driver, and the driver's input validation.

use lithe_ir::op::Activation;
use lithe_kernels::KernelError;
use lithe_kernels::gemm::conformance::{Axis, GemmCase, ResidualKind, all_activations, check_case, run_suite};
use lithe_kernels::gemm::{
    F32Gemm4x8Generic, F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, PackedB, PerAxis, Residual,
    TileEpilogue, TileOut, sgemm,
};
use proptest::prelude::*;

const K: F32Gemm4x8Generic = F32Gemm4x8Generic;

#[test]
fn generic_suite() {
    run_suite(&K).unwrap();
}

#[test]
fn rejects_bad_shapes() {
    let a = vec![0f32; 6];
    let b = vec![0f32; 6];
    let mut c = vec![0f32; 4];
    let ep = GemmEpilogue::default();
    let av = MatRef::row_major(&a, 2, 3).unwrap();
    let bv = MatRef::row_major(&b, 3, 2).unwrap();
    let run = |m, n, k, c: &mut [f32], ldc, ep: &GemmEpilogue<'_>| {
        sgemm(&K, m, n, k, GemmInput::Strided(av), GemmInput::Strided(bv), c, ldc, ep, 1)
    };
    assert!(run(2, 2, 3, &mut c, 2, &ep).is_ok());
    assert!(matches!(run(3, 2, 3, &mut c, 2, &ep), Err(KernelError::Invalid { .. })));
    assert!(matches!(run(2, 2, 3, &mut c, 3, &ep), Err(KernelError::Invalid { .. })));
    assert!(matches!(run(2, 2, 3, &mut c, 1, &ep), Err(KernelError::Invalid { .. })));
    assert!(matches!(run(2, 2, 3, &mut c[..3], 2, &ep), Err(KernelError::Invalid { .. })));
    let short = [1f32];
    let bad_bias = GemmEpilogue { bias: Some(PerAxis::Col(&short)), ..Default::default() };
    assert!(run(2, 2, 3, &mut c, 2, &bad_bias).is_err());
    let bad_res = GemmEpilogue { residual: Residual::Separate(&short), ..Default::default() };
    assert!(run(2, 2, 3, &mut c, 2, &bad_res).is_err());
    let no_slope = GemmEpilogue { activation: Activation::PRelu, ..Default::default() };
    assert!(run(2, 2, 3, &mut c, 2, &no_slope).is_err());
    assert!(MatRef::new(&a, 2, 3, 4, 1).is_err());
    assert!(MatRef::new(&a, usize::MAX, 3, usize::MAX, 1).is_err());
    // A packed for another shape is refused.
    let pa = PackedA::pack(&K, MatRef::row_major(&a, 3, 2).unwrap()).unwrap();
    assert!(sgemm(&K, 2, 2, 3, GemmInput::Packed(&pa), GemmInput::Strided(bv), &mut c, 2, &ep, 1).is_err());
    let pb = PackedB::pack(&K, bv).unwrap();
    assert!(sgemm(&K, 2, 2, 3, GemmInput::Strided(av), GemmInput::Packed(&pb), &mut c, 2, &ep, 2).is_ok());
}

#[test]
fn packed_buffers_are_aligned() {
    let a = vec![1f32; 7 * 5];
    let pa = PackedA::pack(&K, MatRef::row_major(&a, 7, 5).unwrap()).unwrap();
    assert_eq!(pa.as_slice().as_ptr() as usize % 64, 0);
    assert_eq!(pa.as_slice().len(), 8 * 5);
    // Zero padding past the last row.
    assert_eq!(pa.as_slice()[5 * 4 + 3], 0.0);
    let pb = PackedB::pack(&K, MatRef::row_major(&a, 7, 5).unwrap()).unwrap();
    assert_eq!(pb.as_slice().as_ptr() as usize % 64, 0);
    assert_eq!(pb.as_slice().len(), 8 * 7);
}

#[test]
fn tile_views_validate() {
    let mut c = vec![0f32; 10];
    assert!(TileOut::new(&mut c, 4, 3, 4).is_err());
    assert!(TileOut::new(&mut c, 2, 2, 3).is_err());
    let tile = TileOut::new(&mut c, 4, 2, 4).unwrap();
    let r = [0f32; 3];
    assert!(TileEpilogue::new(&tile, false, Default::default(), Some(&r), Default::default()).is_err());
}

#[test]
#[should_panic(expected = "too short")]
fn microkernel_checks_panels() {
    let mut c = vec![0f32; 32];
    let mut tile = TileOut::new(&mut c, 8, 4, 8).unwrap();
    K.run(2, &[0.0; 7], &[0.0; 16], &mut tile, &TileEpilogue::plain(false));
}

fn arb_case() -> impl Strategy<Value = GemmCase> {
    (
        (1usize..40, 1usize..40, 0usize..300),
        (any::<bool>(), any::<bool>(), 0usize..3, any::<bool>(), any::<bool>()),
        (0usize..3, 0usize..3, 0usize..9, 1usize..3, any::<u64>()),
    )
        .prop_map(|((m, n, k), (at, bt, pad, pa, pb), (bias, res, act, threads, seed))| GemmCase {
            m,
            n,
            k,
            a_trans: at,
            b_trans: bt,
            pad,
            pack_a: pa,
            pack_b: pb,
            bias: [Axis::None, Axis::Row, Axis::Col][bias],
            residual: [ResidualKind::None, ResidualKind::Separate, ResidualKind::InOutput][res],
            activation: all_activations()[act],
            threads,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn generic_matches_reference(case in arb_case()) {
        prop_assert_eq!(check_case(&K, &case), Ok(()));
    }
}

/// The generic kernel with one deliberate error in edge tiles: the harness must notice.
struct BrokenEdges;

impl F32GemmMicrokernel for BrokenEdges {
    fn name(&self) -> &'static str {
        "broken_edges"
    }
    fn mr(&self) -> usize {
        K.mr()
    }
    fn nr(&self) -> usize {
        K.nr()
    }
    fn run(&self, k: usize, a: &[f32], b: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
        K.run(k, a, b, c, ep);
        if c.cols() < K.nr() && k > 0 {
            let v = c.get(0, c.cols() - 1);
            c.set(0, c.cols() - 1, v + 1e-3);
        }
    }
}

#[test]
fn harness_catches_a_broken_kernel() {
    assert!(check_case(&BrokenEdges, &GemmCase::plain(5, 9, 7)).is_err());
    assert!(check_case(&BrokenEdges, &GemmCase::plain(5, 8, 7)).is_ok());
}

#[test]
#[should_panic(expected = "different tile")]
fn microkernel_refuses_an_epilogue_for_a_smaller_tile() {
    let mut small = vec![0f32; 4];
    let residual = [1f32; 4];
    let ep = {
        let tile = TileOut::new(&mut small, 2, 2, 2).unwrap();
        TileEpilogue::new(&tile, false, Default::default(), Some(&residual), Default::default()).unwrap()
    };
    let mut c = vec![0f32; 32];
    let mut tile = TileOut::new(&mut c, 8, 4, 8).unwrap();
    K.run(1, &[0.0; 4], &[0.0; 8], &mut tile, &ep);
}
