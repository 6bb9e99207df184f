use super::*;
use lithe_ir::npy::{to_npy_bytes, write_npy};
use std::io::Write;
use zip::write::SimpleFileOptions;

fn f32_tensor(shape: &[usize], offset: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| i as f32 + offset).collect()).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.as_f32().expect("f32 tensor").iter().copied().collect()
}

/// The error must be `CalibData` naming `path` (and containing `needle` in its message).
fn assert_calib_error<T: std::fmt::Debug>(r: Result<T, QuantError>, path: &str, needle: &str) {
    match r {
        Err(QuantError::CalibData { path: p, reason }) => {
            assert!(p.contains(path), "error names '{p}', expected '{path}' ({reason})");
            let msg = format!("{p}: {reason}");
            assert!(msg.contains(needle), "'{msg}' does not mention '{needle}'");
        }
        other => panic!("expected a CalibData error naming {path}, got {other:?}"),
    }
}

fn write_npz(path: &Path, members: &[(&str, Vec<u8>)], deflate: bool) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    for (name, bytes) in members {
        zip.start_file(*name, SimpleFileOptions::default().compression_method(method)).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

// ---- .npy ----

#[test]
fn npy_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    write_npy(&a, &f32_tensor(&[5, 3], 0.0)).unwrap();
    // float16 is accepted and converted.
    write_npy(&b, &f32_tensor(&[5, 2, 2], 100.0).cast(lithe_ir::DType::F16)).unwrap();
    let src = ArraySource::from_npy(&[
        (InputSpec::fixed("a", &[1, 3]), a.clone()),
        (InputSpec::new("b", &[None, Some(2), None]), b.clone()),
    ])
    .unwrap();
    assert_eq!(src.len(), 5);
    assert_eq!(src.inputs().len(), 2);
    let all: Vec<Batch> = batches(&src, 2).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.iter().map(Batch::samples).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(batches(&src, 2).unwrap().size_hint(), (3, Some(3)));
    let last = &all[2];
    assert_eq!(last.get("a").unwrap().shape(), &[1, 3]);
    assert_eq!(values(last.get("a").unwrap()), vec![12.0, 13.0, 14.0]);
    assert_eq!(last.get("b").unwrap().shape(), &[1, 2, 2]);
    assert_eq!(values(last.get("b").unwrap()), vec![116.0, 117.0, 118.0, 119.0]);
    assert_eq!(values(all[0].get("b").unwrap())[..2], [100.0, 101.0]);
    assert!(last.get("c").is_none());
    // A second pass sees the same data.
    let again: Vec<Batch> = batches(&src, 2).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(values(again[1].get("a").unwrap()), values(all[1].get("a").unwrap()));
    assert!(matches!(batches(&src, 0), Err(QuantError::Setting { .. })));
    // open_source on a single .npy.
    let one = open_source(&a, &[InputSpec::fixed("a", &[1, 3])], None).unwrap();
    assert_eq!(one.len(), 5);
}

#[test]
fn npy_malformed_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let spec = InputSpec::fixed("x", &[1, 4]);
    let good = to_npy_bytes(&f32_tensor(&[3, 4], 0.0));

    // Truncated data and truncated header.
    std::fs::write(p("trunc.npy"), &good[..good.len() - 5]).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("trunc.npy"))]), "trunc.npy", "not a valid .npy");
    std::fs::write(p("head.npy"), &good[..20]).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("head.npy"))]), "head.npy", ".npy");
    std::fs::write(p("junk.npy"), b"hello").unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("junk.npy"))]), "junk.npy", "magic");

    // Wrong dtype.
    write_npy(&p("int.npy"), &Tensor::from_vec(&[3, 4], vec![1i64; 12]).unwrap()).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("int.npy"))]), "int.npy", "dtype");

    // Shape that does not fit the input, and no samples.
    write_npy(&p("shape.npy"), &f32_tensor(&[3, 5], 0.0)).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("shape.npy"))]), "shape.npy", "does not fit");
    write_npy(&p("rank.npy"), &f32_tensor(&[4], 0.0)).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("rank.npy"))]), "rank.npy", "does not fit");
    write_npy(&p("empty.npy"), &f32_tensor(&[0, 4], 0.0)).unwrap();
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("empty.npy"))]), "empty.npy", "no samples");

    // Missing file.
    assert_calib_error(ArraySource::from_npy(&[(spec.clone(), p("missing.npy"))]), "missing.npy", "cannot read");

    // Mismatched sample counts: the second file is named.
    write_npy(&p("a.npy"), &f32_tensor(&[3, 4], 0.0)).unwrap();
    write_npy(&p("b.npy"), &f32_tensor(&[2, 4], 0.0)).unwrap();
    let r = ArraySource::from_npy(&[(spec.clone(), p("a.npy")), (InputSpec::fixed("y", &[1, 4]), p("b.npy"))]);
    assert_calib_error(r, "b.npy", "2 samples");

    // Wrong extension for open_source; several inputs for one .npy.
    assert_calib_error(open_source(&p("a.txt"), std::slice::from_ref(&spec), None), "a.txt", "expected");
    let two = [spec.clone(), InputSpec::fixed("y", &[1, 4])];
    assert_calib_error(open_source(&p("a.npy"), &two, None), "a.npy", "2 inputs");
}

// ---- .npz ----

#[test]
fn npz_members_per_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calib.npz");
    let a = to_npy_bytes(&f32_tensor(&[4, 2], 0.0));
    let b = to_npy_bytes(&f32_tensor(&[4, 1, 3], 50.0));
    for deflate in [true, false] {
        write_npz(&path, &[("b.npy", b.clone()), ("a.npy", a.clone())], deflate);
        let specs = [InputSpec::fixed("a", &[1, 2]), InputSpec::fixed("b", &[1, 1, 3])];
        let src = open_source(&path, &specs, None).unwrap();
        assert_eq!(src.len(), 4);
        let batch = src.load(3, 10).unwrap();
        assert_eq!(batch.inputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(values(batch.get("a").unwrap()), vec![6.0, 7.0]);
        assert_eq!(values(batch.get("b").unwrap()), vec![59.0, 60.0, 61.0]);
    }
    // One input, one member of another name (np.savez(path, x) names it arr_0.npy).
    write_npz(&path, &[("arr_0.npy", a.clone())], true);
    let src = ArraySource::from_npz(&path, &[InputSpec::fixed("input", &[1, 2])]).unwrap();
    assert_eq!(src.len(), 4);
}

#[test]
fn npz_malformed_files_name_the_file_and_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npz");
    let specs = [InputSpec::fixed("a", &[1, 2]), InputSpec::fixed("b", &[1, 2])];
    let a = to_npy_bytes(&f32_tensor(&[4, 2], 0.0));

    // Missing member.
    write_npz(&path, &[("a.npy", a.clone()), ("c.npy", a.clone())], true);
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "no member 'b.npy'");

    // Mismatched sample counts.
    write_npz(&path, &[("a.npy", a.clone()), ("b.npy", to_npy_bytes(&f32_tensor(&[3, 2], 0.0)))], true);
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "3 samples");

    // A member that is not a .npy, a truncated member, a wrong dtype.
    write_npz(&path, &[("a.npy", a.clone()), ("b.npy", b"nonsense".to_vec())], true);
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "member 'b.npy'");
    write_npz(&path, &[("a.npy", a[..a.len() - 3].to_vec()), ("b.npy", a.clone())], false);
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "member 'a.npy'");
    let ints = to_npy_bytes(&Tensor::from_vec(&[4, 2], vec![1i32; 8]).unwrap());
    write_npz(&path, &[("a.npy", a.clone()), ("b.npy", ints)], true);
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "dtype");

    // A truncated archive, and bytes that are no zip at all.
    write_npz(&path, &[("a.npy", a.clone()), ("b.npy", a.clone())], true);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 10, bytes.len() / 2, 3] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "");
    }
    // Corrupted deflate data inside an intact archive.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[40..90] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &corrupt).unwrap();
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "");
    std::fs::write(&path, b"PK\x03\x04 not really").unwrap();
    assert_calib_error(ArraySource::from_npz(&path, &specs), "bad.npz", "zip");
    assert_calib_error(ArraySource::from_npz(&dir.path().join("none.npz"), &specs), "none.npz", "cannot read");
}

// ---- preprocessing ----

#[test]
fn preprocess_is_lithe_trains_spec() {
    // Parsing is tested in lithe-train; here the re-export and its errors.
    let p: Preprocess = "resize=256,crop=224,order=bgr,layout=nhwc,scale=1/255".parse().unwrap();
    assert_eq!((p.resize, p.crop), (Some(Resize::ShorterSide(256)), Some((224, 224))));
    assert_eq!((p.order, p.layout), (ChannelOrder::Bgr, Layout::Nhwc));
    assert!(matches!("std=0".parse::<Preprocess>(), Err(lithe_train::TrainError::Setting { .. })));
    // A spec that only fails when checked against the channels is a quantization setting error.
    let bad = Preprocess { mean: vec![1.0, 2.0], ..Preprocess::default() };
    let dir = tempfile::tempdir().unwrap();
    let r = ImageFolderSource::open(dir.path(), InputSpec::fixed("img", &[1, 3, 2, 2]), bad);
    assert!(matches!(r, Err(QuantError::Setting { field: "preprocess", .. })), "{r:?}");
}

// ---- image folders ----

/// A 4x6 (HxW) RGB image whose pixel (y, x) is (10y + x, 100 + 10y + x, 200 + x).
fn test_image() -> image::RgbImage {
    image::RgbImage::from_fn(6, 4, |x, y| image::Rgb([(10 * y + x) as u8, (100 + 10 * y + x) as u8, (200 + x) as u8]))
}

#[test]
fn image_folder_crops_normalizes_and_lays_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    test_image().save(dir.path().join("b.png")).unwrap();
    test_image().save(dir.path().join("sub/deeper/a.PNG")).unwrap();
    test_image().save(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();

    // Centre crop 2x2 of 4x6: rows 1..3, columns 2..4.
    let pre: Preprocess = "crop=2x2,mean=1:2:3,std=2,scale=1".parse().unwrap();
    let spec = InputSpec::new("img", &[None, Some(3), Some(2), Some(2)]);
    let src = ImageFolderSource::open(dir.path(), spec.clone(), pre).unwrap();
    let names: Vec<String> =
        src.files().iter().map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
    assert_eq!(names, ["a.png", "b.png", "sub/deeper/a.PNG"]);
    let batch = src.load(0, 2).unwrap();
    let t = batch.get("img").unwrap();
    assert_eq!(t.shape(), &[2, 3, 2, 2]);
    let v = values(t);
    let px = |y: usize, x: usize| [(10 * y + x) as f32, (100 + 10 * y + x) as f32, (200 + x) as f32];
    let mut want = Vec::new();
    for c in 0..3 {
        for y in 1..3 {
            for x in 2..4 {
                want.push((px(y, x)[c] - [1.0, 2.0, 3.0][c]) / 2.0);
            }
        }
    }
    assert_eq!(&v[..12], &want[..]);
    assert_eq!(&v[12..], &want[..]);

    // BGR, NHWC, scale 1/255, crop taken from the model size.
    let pre: Preprocess = "order=bgr,layout=nhwc,scale=1/255".parse().unwrap();
    let src = ImageFolderSource::open(dir.path(), InputSpec::fixed("img", &[1, 2, 2, 3]), pre).unwrap();
    let v = values(src.load(2, 5).unwrap().get("img").unwrap());
    assert_eq!(v.len(), 12);
    let mut want = Vec::new();
    for y in 1..3 {
        for x in 2..4 {
            for c in [2, 1, 0] {
                want.push(px(y, x)[c] / 255.0);
            }
        }
    }
    assert!(v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{v:?} vs {want:?}");

    // Gray: one channel.
    let pre: Preprocess = "order=gray,crop=4x6".parse().unwrap();
    let src = ImageFolderSource::open(dir.path(), InputSpec::new("img", &[None, Some(1), None, None]), pre).unwrap();
    assert_eq!(src.load(0, 1).unwrap().get("img").unwrap().shape(), &[1, 1, 4, 6]);

    // open_source on a folder.
    let src = open_source(dir.path(), &[InputSpec::fixed("img", &[1, 3, 2, 2])], None).unwrap();
    assert_eq!(src.len(), 3);
}

#[test]
fn image_folder_resizes_png_and_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    // Uniform colour: resizing keeps it (JPEG within its loss).
    let flat = image::RgbImage::from_pixel(40, 20, image::Rgb([30, 120, 210]));
    flat.save(dir.path().join("flat.png")).unwrap();
    flat.save(dir.path().join("flat.jpg")).unwrap();
    let tall = image::RgbImage::from_pixel(17, 33, image::Rgb([30, 120, 210]));
    tall.save(dir.path().join("tall.png")).unwrap();
    let pre: Preprocess = "resize=16,crop=12x14".parse().unwrap();
    let src = ImageFolderSource::open(dir.path(), InputSpec::new("x", &[None, Some(3), None, None]), pre).unwrap();
    let t = src.load(0, 3).unwrap().inputs.remove(0).1;
    assert_eq!(t.shape(), &[3, 3, 12, 14]);
    let v = values(&t);
    for (s, sample) in v.chunks(3 * 12 * 14).enumerate() {
        for (c, plane) in sample.chunks(12 * 14).enumerate() {
            let want = [30.0, 120.0, 210.0][c];
            assert!(plane.iter().all(|&x| (x - want).abs() <= 4.0), "sample {s} channel {c}: {plane:?}");
        }
    }
    // Exact resize then crop; too small for the crop fails naming the file.
    let pre: Preprocess = "resize=10x10,crop=12x14".parse().unwrap();
    let src = ImageFolderSource::open(dir.path(), InputSpec::new("x", &[None, Some(3), None, None]), pre).unwrap();
    assert_calib_error(src.load(0, 1), "flat.jpg", "smaller than the 12x14 crop");
}

#[test]
fn image_folder_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = InputSpec::fixed("img", &[1, 3, 2, 2]);
    // No images.
    assert_calib_error(ImageFolderSource::open(dir.path(), spec.clone(), Preprocess::default()), "", "no .jpg");
    assert_calib_error(
        ImageFolderSource::open(&dir.path().join("nope"), spec.clone(), Preprocess::default()),
        "nope",
        "cannot list",
    );
    // A corrupt image: named when its batch is loaded; a truncated PNG likewise.
    test_image().save(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let good = std::fs::read(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("c.png"), &good[..good.len() / 2]).unwrap();
    let src = ImageFolderSource::open(dir.path(), spec.clone(), Preprocess::default()).unwrap();
    assert!(src.load(0, 1).is_ok());
    assert_calib_error(src.load(1, 1), "b.png", "cannot decode");
    assert_calib_error(src.load(2, 1), "c.png", "cannot decode");
    let mut it = batches(&src, 2).unwrap();
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none(), "iteration stops after an error");
    // Settings that do not fit the model input.
    let setting = |spec: InputSpec, pre: &str| {
        matches!(ImageFolderSource::open(dir.path(), spec, pre.parse().unwrap()), Err(QuantError::Setting { .. }))
    };
    assert!(setting(InputSpec::fixed("img", &[1, 3, 4]), ""));
    assert!(setting(InputSpec::fixed("img", &[1, 1, 2, 2]), ""));
    assert!(setting(InputSpec::fixed("img", &[1, 3, 2, 2]), "order=gray"));
    assert!(setting(InputSpec::fixed("img", &[1, 3, 2, 2]), "layout=nhwc"));
    assert!(setting(InputSpec::fixed("img", &[1, 3, 2, 2]), "crop=3"));
    assert!(setting(InputSpec::new("img", &[None, Some(3), None, None]), ""));
    // Folders take one input.
    let two = [spec.clone(), spec.clone()];
    assert_calib_error(open_source(dir.path(), &two, None), "", "2 inputs");
}
