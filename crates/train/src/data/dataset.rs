//! [`Dataset`]: samples held in memory with one class label each, and its file readers.

use super::arrays::{Npz, labels_usize, read_npy, samples_f32};
use super::folder::ImageFolder;
use super::idx::read_idx;
use super::images::ImageDecoder;
use super::{Preprocess, data_error};
use crate::TrainError;
use lithe_ir::Tensor;
use std::path::Path;

/// Samples (f32, each of `sample_shape`) with one class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Every sample's values, sample after sample.
    pub x: Vec<f32>,
    /// The shape of one sample (e.g. `[1, 28, 28]`).
    pub sample_shape: Vec<usize>,
    /// One label per sample.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// Build from parts, checking the sizes agree.
    pub fn new(x: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<usize>) -> Result<Self, TrainError> {
        let per: usize = sample_shape.iter().product();
        if per == 0 || x.len() != per * labels.len() {
            return Err(TrainError::Invalid {
                what: "dataset".into(),
                detail: format!("{} values for {} samples of shape {sample_shape:?}", x.len(), labels.len()),
            });
        }
        Ok(Dataset { x, sample_shape, labels })
    }

    /// MNIST-style IDX pair: images `N x H x W` (u8) become `N x 1 x H x W` f32 `pixel / 255`,
    /// labels `N` (u8).
    pub fn from_idx(images: &Path, labels: &Path) -> Result<Self, TrainError> {
        let im = read_idx(images)?;
        let lb = read_idx(labels)?;
        if im.dims.len() != 3 || lb.dims.len() != 1 || im.dims[0] != lb.dims[0] {
            return Err(data_error(
                images.display(),
                format!("images {:?} and labels {:?} do not pair as N x H x W and N", im.dims, lb.dims),
            ));
        }
        let x = im.data.iter().map(|&v| v as f32 / 255.0).collect();
        Dataset::new(x, vec![1, im.dims[1], im.dims[2]], lb.data.iter().map(|&l| l as usize).collect())
    }

    /// A `.npy` of samples stacked on axis 0 (any float or integer dtype, cast to f32 as is) and
    /// a `.npy` of integer labels (any integer dtype, none negative), at least one sample.
    pub fn from_npy(x: &Path, labels: &Path) -> Result<Self, TrainError> {
        let (xt, lt) = (read_npy(x)?, read_npy(labels)?);
        let labels_name = labels.display().to_string();
        Dataset::from_arrays(&xt, &x.display().to_string(), &lt, &labels_name)
    }

    /// One `.npz` archive holding the samples (member `x`, or the name given; any float or integer
    /// dtype, cast to f32 as is: u8 images keep 0..=255) and the labels (member `y`, else
    /// `labels`, or the name given; any integer dtype). Member names may omit `.npy`.
    pub fn from_npz(path: &Path, x: Option<&str>, y: Option<&str>) -> Result<Self, TrainError> {
        let mut npz = Npz::open(path)?;
        let find = |npz: &Npz, names: &[&str]| -> Result<String, TrainError> {
            names.iter().find_map(|n| npz.member_for(n)).map(str::to_string).ok_or_else(|| {
                data_error(
                    path.display(),
                    format!("no member '{}' (members: {})", names.join("' or '"), npz.members().join(", ")),
                )
            })
        };
        let xm = find(&npz, &[x.unwrap_or("x")])?;
        let y_names = match y {
            Some(y) => vec![y],
            None => vec!["y", "labels"],
        };
        let ym = find(&npz, &y_names)?;
        let (xt, yt) = (npz.read(&xm)?, npz.read(&ym)?);
        let name = |m: &str| format!("{}: member '{m}'", path.display());
        Dataset::from_arrays(&xt, &name(&xm), &yt, &name(&ym))
    }

    /// A labelled image folder (see [`ImageFolder`]) decoded with `pre`, whose crop (or else exact
    /// resize) sets the sample size; also returns the class names in label order.
    pub fn from_image_folder(root: &Path, pre: &Preprocess) -> Result<(Self, Vec<String>), TrainError> {
        let decoder = ImageDecoder::from_spec(pre.clone())?;
        let folder = ImageFolder::scan(root)?;
        Ok((folder.load(&decoder)?, folder.classes))
    }

    /// Samples stacked on axis 0 of `xt` and their labels `lt`, each named for errors.
    fn from_arrays(xt: &Tensor, x_name: &str, lt: &Tensor, l_name: &str) -> Result<Self, TrainError> {
        if xt.shape().len() < 2 {
            return Err(data_error(
                x_name,
                format!("samples of shape {:?} (expected samples stacked on a first axis)", xt.shape()),
            ));
        }
        if xt.shape()[0] == 0 {
            return Err(data_error(x_name, format!("no samples (shape {:?})", xt.shape())));
        }
        let labels = labels_usize(lt, l_name)?;
        if labels.len() != xt.shape()[0] {
            return Err(data_error(
                l_name,
                format!("{} labels for {} samples in {x_name}", labels.len(), xt.shape()[0]),
            ));
        }
        let x = samples_f32(xt, x_name)?;
        Dataset::new(x, xt.shape()[1..].to_vec(), labels).map_err(|e| data_error(x_name, e.to_string()))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The number of classes the labels imply (the largest label + 1; 0 when empty).
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m + 1)
    }

    /// The first `n` samples (all when fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let per: usize = self.sample_shape.iter().product();
        Dataset {
            x: self.x[..n * per].to_vec(),
            sample_shape: self.sample_shape.clone(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The samples at `indices` as one `len x sample_shape` tensor, and their labels.
    pub fn gather(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let per: usize = self.sample_shape.iter().product();
        let mut x = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            x.extend_from_slice(&self.x[i * per..(i + 1) * per]);
        }
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(&self.sample_shape);
        let t = Tensor::from_vec(&shape, x).expect("sizes agree");
        (t, indices.iter().map(|&i| self.labels[i]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::arrays::tests::write_zip;
    use lithe_ir::DType;
    use lithe_ir::npy::{to_npy_bytes, write_npy};

    fn reason(r: Result<Dataset, TrainError>, needle: &str) -> String {
        match r {
            Err(TrainError::Data { path, reason }) if path.contains(needle) => reason,
            other => panic!("expected a data error naming {needle}, got {other:?}"),
        }
    }

    fn samples() -> Tensor {
        Tensor::from_vec(&[3, 1, 2], vec![0u8, 1, 2, 3, 4, 255]).unwrap()
    }

    #[test]
    fn mnist_split_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
        let d = Dataset::from_idx(&dir.join("t10k-images-idx3-ubyte"), &dir.join("t10k-labels-idx1-ubyte")).unwrap();
        assert_eq!((d.len(), d.sample_shape.clone()), (1000, vec![1, 28, 28]));
        assert_eq!(&d.labels[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
        assert_eq!(d.num_classes(), 10);
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn npy_pairs_load_and_mismatches_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
        write_npy(&x, &samples()).unwrap();
        write_npy(&y, &Tensor::from_vec(&[3], vec![2i16, 0, 1]).unwrap()).unwrap();
        let d = Dataset::from_npy(&x, &y).unwrap();
        assert_eq!(
            (d.x.clone(), d.sample_shape.clone(), d.labels.clone()),
            (vec![0., 1., 2., 3., 4., 255.], vec![1, 2], vec![2, 0, 1])
        );
        write_npy(&y, &Tensor::from_vec(&[2], vec![2i64, 0]).unwrap()).unwrap();
        assert!(reason(Dataset::from_npy(&x, &y), "y.npy").contains("2 labels for 3 samples"));
        write_npy(&y, &Tensor::from_vec(&[3], vec![2f32, 0., 1.]).unwrap()).unwrap();
        assert!(reason(Dataset::from_npy(&x, &y), "y.npy").contains("dtype F32"));
        write_npy(&x, &Tensor::from_vec(&[3], vec![1f32, 2., 3.]).unwrap()).unwrap();
        assert!(reason(Dataset::from_npy(&x, &y), "x.npy").contains("stacked"));
        write_npy(&x, &Tensor::from_vec(&[0, 2], Vec::<f32>::new()).unwrap()).unwrap();
        assert!(reason(Dataset::from_npy(&x, &y), "x.npy").contains("no samples"));
        assert!(matches!(Dataset::from_npy(&dir.path().join("none.npy"), &y), Err(TrainError::Io { .. })));
    }

    #[test]
    fn npz_loads_with_default_and_given_member_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        let labels = Tensor::from_vec(&[3], vec![1i64, 1, 0]).unwrap();
        write_zip(&path, &[("x.npy", to_npy_bytes(&samples())), ("y.npy", to_npy_bytes(&labels))]);
        let d = Dataset::from_npz(&path, None, None).unwrap();
        assert_eq!((d.x[5], d.sample_shape.clone(), d.labels.clone()), (255.0, vec![1, 2], vec![1, 1, 0]));
        // `labels` is the fallback label member; names may be given (keras' mnist.npz style).
        let f16 = samples().cast(DType::F32).cast(DType::F16);
        write_zip(&path, &[("x_test.npy", to_npy_bytes(&f16)), ("labels.npy", to_npy_bytes(&labels.cast(DType::U8)))]);
        assert!(reason(Dataset::from_npz(&path, None, None), "d.npz").contains("no member 'x'"));
        let d = Dataset::from_npz(&path, Some("x_test"), None).unwrap();
        assert_eq!((d.x[4], d.labels.clone()), (4.0, vec![1, 1, 0]));
        assert!(
            reason(Dataset::from_npz(&path, Some("x_test"), Some("y_test")), "d.npz").contains("no member 'y_test'")
        );
    }

    #[test]
    fn malformed_npz_names_the_archive_and_member() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npz");
        let x = to_npy_bytes(&samples());
        // Missing label member.
        write_zip(&path, &[("x.npy", x.clone()), ("z.npy", x.clone())]);
        let r = reason(Dataset::from_npz(&path, None, None), "bad.npz");
        assert!(r.contains("no member 'y' or 'labels' (members: x.npy, z.npy)"), "{r}");
        // Label count mismatch.
        let two = to_npy_bytes(&Tensor::from_vec(&[2], vec![0i32, 1]).unwrap());
        write_zip(&path, &[("x.npy", x.clone()), ("y.npy", two)]);
        let r = reason(Dataset::from_npz(&path, None, None), "member 'y.npy'");
        assert!(r.contains("2 labels for 3 samples"), "{r}");
        // Float labels, boolean samples, a member that is no .npy.
        let floats = to_npy_bytes(&Tensor::from_vec(&[3], vec![0f32, 1., 2.]).unwrap());
        write_zip(&path, &[("x.npy", x.clone()), ("y.npy", floats)]);
        assert!(reason(Dataset::from_npz(&path, None, None), "member 'y.npy'").contains("dtype F32"));
        let bools = to_npy_bytes(&Tensor::from_vec(&[3, 1], vec![true, false, true]).unwrap());
        let ints = to_npy_bytes(&Tensor::from_vec(&[3], vec![0u8, 1, 2]).unwrap());
        write_zip(&path, &[("x.npy", bools), ("y.npy", ints.clone())]);
        assert!(reason(Dataset::from_npz(&path, None, None), "member 'x.npy'").contains("Bool"));
        write_zip(&path, &[("x.npy", b"not npy".to_vec()), ("y.npy", ints)]);
        assert!(reason(Dataset::from_npz(&path, None, None), "bad.npz").contains("member 'x.npy': not a valid .npy"));
        // Not a zip at all; no file.
        std::fs::write(&path, b"plain text").unwrap();
        assert!(reason(Dataset::from_npz(&path, None, None), "bad.npz").contains("zip"));
        assert!(matches!(Dataset::from_npz(&dir.path().join("no.npz"), None, None), Err(TrainError::Io { .. })));
    }

    #[test]
    fn image_folder_dataset_keeps_the_class_list() {
        let dir = tempfile::tempdir().unwrap();
        for (class, shade) in [("zebra", 9u8), ("ant", 200)] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            image::GrayImage::from_pixel(4, 4, image::Luma([shade]))
                .save(dir.path().join(class).join("1.png"))
                .unwrap();
        }
        let pre: Preprocess = "order=gray,resize=2x2,scale=1/255".parse().unwrap();
        let (d, classes) = Dataset::from_image_folder(dir.path(), &pre).unwrap();
        assert_eq!(classes, ["ant", "zebra"]);
        assert_eq!((d.sample_shape.clone(), d.labels.clone()), (vec![1, 2, 2], vec![0, 1]));
        let want: Vec<f32> = [200f32; 4].iter().chain(&[9f32; 4]).map(|v| v / 255.0).collect();
        assert!(d.x.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", d.x);
    }
}
