//! Memory plans of the golden models: MobileNetV2's arena is at most a third of the sum of
//! its intermediate tensors, and in every model no two values live at the same time share
//! arena bytes (unless one is computed in place of the other) and every shape resolves
//! before the run (nothing is left outside the arena).

use lithe_ir::npy::read_npy;
use lithe_ir::{Graph, Tensor};
use lithe_runtime::{ARENA_ALIGN, MemoryReport, Predictor, Storage};
use std::path::{Path, PathBuf};

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden").join(case)
}

fn import(dir: &Path) -> Graph {
    lithe_onnx::load_model(&dir.join("model.onnx"), &lithe_onnx::ImportOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn inputs(dir: &Path, n: usize) -> Vec<Tensor> {
    (0..n).map(|i| read_npy(&dir.join(format!("input_{i}.npy"))).unwrap()).collect()
}

/// Run `graph` on the case inputs and return the predictor (holding the plan of that run).
fn run(graph: Graph, dir: &Path) -> Predictor {
    let n = graph.inputs().len();
    let mut p = Predictor::new(graph).unwrap();
    p.run_with(inputs(dir, n)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    p
}

fn check_plan(case: &str, r: &MemoryReport) {
    let root = |mut i: usize| {
        while let Storage::Arena { in_place_of: Some(j), .. } = r.values[i].storage {
            i = j;
        }
        i
    };
    let mut arena = Vec::new();
    for (i, v) in r.values.iter().enumerate() {
        match v.storage {
            Storage::Arena { offset, .. } => {
                assert_eq!(offset % ARENA_ALIGN, 0, "{case}: {} misaligned", v.name);
                assert!(offset + v.bytes <= r.arena_bytes, "{case}: {} ends past the arena", v.name);
                arena.push((i, offset, v));
            }
            Storage::Resolved => {}
            Storage::Dynamic => panic!("{case}: '{}' ({}) was not resolved before the run", v.name, v.ty),
        }
    }
    for (k, &(i, oa, a)) in arena.iter().enumerate() {
        for &(j, ob, b) in &arena[k + 1..] {
            let live_together = a.first_step <= b.last_step && b.first_step <= a.last_step;
            if live_together && a.bytes > 0 && b.bytes > 0 && root(i) != root(j) {
                assert!(
                    oa + a.bytes <= ob || ob + b.bytes <= oa,
                    "{case}: '{}' [{}, {}] at {oa}+{} and '{}' [{}, {}] at {ob}+{} overlap",
                    a.name,
                    a.first_step,
                    a.last_step,
                    a.bytes,
                    b.name,
                    b.first_step,
                    b.last_step,
                    b.bytes
                );
            }
        }
    }
    assert!(r.arena_bytes >= r.peak_live_bytes, "{case}: arena below the live peak");
    assert!(r.arena_bytes <= r.sum_intermediate_bytes + ARENA_ALIGN * r.values.len(), "{case}");
}

#[test]
fn mobilenet_v2_arena_is_at_most_a_third_of_its_intermediates() {
    let dir = golden("mobilenet_v2");
    for optimized in [false, true] {
        let mut graph = import(&dir);
        if optimized {
            lithe_passes::PassManager::default_pipeline().run(&mut graph).unwrap();
        }
        let p = run(graph, &dir);
        let r = p.memory_report().unwrap();
        check_plan("mobilenet_v2", r);
        let arena_count = r.values.iter().filter(|v| matches!(v.storage, Storage::Arena { .. })).count();
        println!(
            "mobilenet_v2 ({}): arena {} B, sum of {} intermediate tensors {} B (ratio {:.3}), live peak {} B, \
             {} computed in place",
            if optimized { "optimized" } else { "imported" },
            r.arena_bytes,
            arena_count,
            r.sum_intermediate_bytes,
            r.arena_bytes as f64 / r.sum_intermediate_bytes as f64,
            r.peak_live_bytes,
            r.in_place_values
        );
        assert!(
            r.arena_bytes * 3 <= r.sum_intermediate_bytes,
            "arena {} > sum {} / 3",
            r.arena_bytes,
            r.sum_intermediate_bytes
        );
        assert!(r.in_place_values > 0);
    }
}

#[test]
fn every_golden_plan_is_sound_and_fully_resolved() {
    let root = golden("");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 30, "golden data missing in {}", root.display());
    for dir in dirs {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let p = run(import(&dir), &dir);
        let r = p.memory_report().unwrap();
        check_plan(&case, r);
        println!(
            "{case:<40} arena {:>9} B  sum {:>9} B  in place {:>3}",
            r.arena_bytes, r.sum_intermediate_bytes, r.in_place_values
        );
    }
}
