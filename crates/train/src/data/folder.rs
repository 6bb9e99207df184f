//! Labelled image folders: `root/<class>/<images>`, torchvision's `ImageFolder` layout.

use super::images::{ImageDecoder, list_images};
use super::{Dataset, data_error};
use crate::TrainError;
use std::path::{Path, PathBuf};

/// The images of a labelled folder: every sub-folder of the root is a class, the classes sorted
/// by folder name give the label indices (`classes[label]` is the folder name), and a class's
/// images are the `.jpg`/`.jpeg`/`.png` files anywhere under its folder, sorted by path. Files
/// directly in the root are ignored. Listing only: images are decoded by [`ImageFolder::load`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolder {
    /// The class names (folder names), in label order.
    pub classes: Vec<String>,
    /// Every image, class after class.
    pub files: Vec<PathBuf>,
    /// The label of each file.
    pub labels: Vec<usize>,
}

impl ImageFolder {
    /// List the classes and images under `root`. A root without class folders, a class folder
    /// without images, or a folder name that is not UTF-8 is an error naming the folder.
    pub fn scan(root: &Path) -> Result<Self, TrainError> {
        let list_error = |e: std::io::Error| data_error(root.display(), format!("cannot list the folder: {e}"));
        let mut class_dirs = Vec::new();
        for entry in std::fs::read_dir(root).map_err(list_error)? {
            let path = entry.map_err(list_error)?.path();
            if path.is_dir() {
                let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                    return Err(data_error(path.display(), "class folder name is not UTF-8"));
                };
                class_dirs.push((name, path));
            }
        }
        if class_dirs.is_empty() {
            return Err(data_error(root.display(), "no class folders (expected root/<class>/<images>)"));
        }
        class_dirs.sort();
        let mut folder = ImageFolder { classes: Vec::new(), files: Vec::new(), labels: Vec::new() };
        for (label, (name, dir)) in class_dirs.into_iter().enumerate() {
            let images = list_images(&dir)?;
            if images.is_empty() {
                return Err(data_error(dir.display(), format!("class '{name}' has no .jpg, .jpeg or .png images")));
            }
            folder.labels.extend(std::iter::repeat_n(label, images.len()));
            folder.files.extend(images);
            folder.classes.push(name);
        }
        tracing::debug!(root = %root.display(), classes = folder.classes.len(), images = folder.files.len(), "image folder");
        Ok(folder)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are no images (never after [`ImageFolder::scan`]).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Decode every image (in parallel) with `decoder` into an in-memory dataset; an undecodable
    /// image is an error naming its file.
    pub fn load(&self, decoder: &ImageDecoder) -> Result<Dataset, TrainError> {
        let x = decoder.decode_all(&self.files)?;
        Dataset::new(x, decoder.sample_shape().to_vec(), self.labels.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Preprocess;

    /// A 2x3 (HxW) RGB image whose pixel (y, x) is (base + 10y + x, 100 + x, 200 + y).
    fn image(base: u8) -> image::RgbImage {
        image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([base + (10 * y + x) as u8, 100 + x as u8, 200 + y as u8]))
    }

    fn reason(err: TrainError, needle: &str) -> String {
        match err {
            TrainError::Data { path, reason } if path.contains(needle) => reason,
            other => panic!("expected a data error naming {needle}, got {other}"),
        }
    }

    #[test]
    fn classes_sorted_by_name_give_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (class, files) in [("dog", &["b.png", "a.png"][..]), ("cat", &["z.PNG"][..]), ("emu", &["x/deep.png"][..])]
        {
            for (i, f) in files.iter().enumerate() {
                let path = root.join(class).join(f);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                image(10 * i as u8).save(&path).unwrap();
            }
        }
        std::fs::write(root.join("readme.png"), b"ignored: not in a class folder").unwrap();
        std::fs::write(root.join("dog/notes.txt"), b"not an image").unwrap();
        let folder = ImageFolder::scan(root).unwrap();
        assert_eq!(folder.classes, ["cat", "dog", "emu"]);
        assert_eq!(folder.labels, [0, 1, 1, 2]);
        let rel: Vec<String> =
            folder.files.iter().map(|f| f.strip_prefix(root).unwrap().display().to_string()).collect();
        assert_eq!(rel, ["cat/z.PNG", "dog/a.png", "dog/b.png", "emu/x/deep.png"]);

        // Full-size crop, RGB NCHW, (v - 1) / 2.
        let pre: Preprocess = "crop=2x3,mean=1,std=2".parse().unwrap();
        let d = folder.load(&ImageDecoder::from_spec(pre).unwrap()).unwrap();
        assert_eq!((d.len(), d.sample_shape.clone()), (4, vec![3, 2, 3]));
        let px = |base: f32, y: usize, x: usize| [base + (10 * y + x) as f32, 100. + x as f32, 200. + y as f32];
        let mut want = Vec::new();
        for c in 0..3 {
            for y in 0..2 {
                for x in 0..3 {
                    want.push((px(0.0, y, x)[c] - 1.0) / 2.0);
                }
            }
        }
        // Sample 2 is dog/b.png, written first (base 0); sample 1, dog/a.png, has base 10.
        assert_eq!(&d.x[2 * 18..3 * 18], &want[..]);
        assert_eq!(d.x[18], (10.0 - 1.0) / 2.0);
        assert_eq!(d.labels, folder.labels);

        // Gray, NHWC, centre crop 2x1 (column 1), size from the crop.
        let pre: Preprocess = "order=gray,layout=nhwc,crop=2x1".parse().unwrap();
        let d = folder.load(&ImageDecoder::from_spec(pre).unwrap()).unwrap();
        assert_eq!(d.sample_shape, vec![2, 1, 1]);
    }

    #[test]
    fn malformed_folders_name_the_file_or_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(reason(ImageFolder::scan(root).unwrap_err(), "").contains("no class folders"));
        assert!(reason(ImageFolder::scan(&root.join("missing")).unwrap_err(), "missing").contains("cannot list"));
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        image(0).save(root.join("a/ok.png")).unwrap();
        std::fs::write(root.join("b/info.txt"), b"no images here").unwrap();
        assert!(reason(ImageFolder::scan(root).unwrap_err(), "/b").contains("class 'b' has no"));
        std::fs::write(root.join("b/broken.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
        let folder = ImageFolder::scan(root).unwrap();
        let decoder = ImageDecoder::from_spec("crop=2x3".parse().unwrap()).unwrap();
        assert!(reason(folder.load(&decoder).unwrap_err(), "broken.png").contains("cannot decode the image"));
        // An image smaller than the crop.
        std::fs::remove_file(root.join("b/broken.png")).unwrap();
        image(0).save(root.join("b/ok.png")).unwrap();
        let decoder = ImageDecoder::from_spec("crop=3x3".parse().unwrap()).unwrap();
        assert!(reason(ImageFolder::scan(root).unwrap().load(&decoder).unwrap_err(), "ok.png").contains("smaller"));
        // No sample size in the spec.
        assert!(matches!(ImageDecoder::from_spec(Preprocess::default()), Err(TrainError::Setting { .. })));
    }
}
