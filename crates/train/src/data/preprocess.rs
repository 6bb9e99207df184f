//! Image preprocessing: resize, centre crop, normalization, channel order and layout.

use crate::TrainError;
use std::fmt;
use std::str::FromStr;

/// How images are turned into a model input, parsed from a compact string of comma-separated
/// `key=value` fields (all optional, in any order):
///
/// | key | value | default |
/// | --- | --- | --- |
/// | `resize` | `S`: shorter side to `S`, keeping the aspect ratio (the longer side is truncated, as torchvision does); `HxW`: exactly `H` rows by `W` columns | no resize |
/// | `crop` | `S` or `HxW`: centre crop (offsets `round_half_even((size - crop) / 2)`, as torchvision) | the model input's height and width |
/// | `mean` | one value, or one per channel separated by `:` | 0 |
/// | `std` | likewise, none zero | 1 |
/// | `scale` | a number or a fraction `a/b` | 1 |
/// | `order` | `rgb`, `bgr` or `gray` (one luma channel) | `rgb` |
/// | `layout` | `nchw` or `nhwc` | `nchw` |
///
/// Each value is `(pixel * scale - mean[c]) / std[c]`, pixels being 0..=255 (16-bit images are
/// reduced to 8 bits). Resizing is bilinear (a triangle filter, which also averages when
/// shrinking). The ImageNet convention is
/// `resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,order=rgb,layout=nchw,scale=1/255`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Resize before cropping.
    pub resize: Option<Resize>,
    /// Centre crop `(height, width)`; `None`: the model input's height and width.
    pub crop: Option<(u32, u32)>,
    /// Subtracted after scaling: one value for all channels or one per channel.
    pub mean: Vec<f32>,
    /// Divides after the mean: one value for all channels or one per channel.
    pub std: Vec<f32>,
    /// Multiplies the 0..=255 pixel values first.
    pub scale: f32,
    /// Channel order of the model input.
    pub order: ChannelOrder,
    /// Layout of the model input.
    pub layout: Layout,
}

/// How [`Preprocess`] resizes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// The shorter side becomes this many pixels, keeping the aspect ratio.
    ShorterSide(u32),
    /// Exactly this size.
    Exact {
        /// Rows.
        height: u32,
        /// Columns.
        width: u32,
    },
}

/// Channel order of a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
    /// One luma channel.
    Gray,
}

impl ChannelOrder {
    /// The number of channels: 3, or 1 for gray.
    pub fn channels(&self) -> usize {
        match self {
            ChannelOrder::Gray => 1,
            _ => 3,
        }
    }
}

/// Layout of an image model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Batch, channels, rows, columns.
    Nchw,
    /// Batch, rows, columns, channels.
    Nhwc,
}

impl Default for Preprocess {
    /// No resize, crop to the model size, values 0..=255 in RGB NCHW.
    fn default() -> Self {
        Preprocess {
            resize: None,
            crop: None,
            mean: vec![0.0],
            std: vec![1.0],
            scale: 1.0,
            order: ChannelOrder::Rgb,
            layout: Layout::Nchw,
        }
    }
}

impl Preprocess {
    /// The per-channel `(mean, std)` pairs for the channel order, after checking their counts.
    pub fn normalization(&self) -> Result<Vec<(f32, f32)>, TrainError> {
        let c = self.order.channels();
        let pick = |v: &[f32], field: &'static str| -> Result<Vec<f32>, TrainError> {
            match v.len() {
                1 => Ok(vec![v[0]; c]),
                n if n == c => Ok(v.to_vec()),
                n => Err(setting(field, format!("{n} values for {c} channels (give 1 or {c})"))),
            }
        };
        let (mean, std) = (pick(&self.mean, "mean")?, pick(&self.std, "std")?);
        if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(setting("std", format!("{s} (must be finite and non-zero)")));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(setting("mean", format!("{m} (must be finite)")));
        }
        if !self.scale.is_finite() {
            return Err(setting("scale", format!("{} (must be finite)", self.scale)));
        }
        Ok(mean.into_iter().zip(std).collect())
    }
}

/// A [`TrainError::Setting`] of the `preprocess` field.
pub(crate) fn setting(what: &str, reason: String) -> TrainError {
    TrainError::Setting { field: "preprocess", reason: format!("{what}: {reason}") }
}

fn parse_size(key: &str, v: &str) -> Result<(u32, u32), TrainError> {
    let num = |s: &str| -> Result<u32, TrainError> {
        match s.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(setting(key, format!("'{v}' is not a positive size (S or HxW)"))),
        }
    };
    match v.split_once(['x', 'X']) {
        Some((h, w)) => Ok((num(h)?, num(w)?)),
        None => {
            let s = num(v)?;
            Ok((s, s))
        }
    }
}

fn parse_number(key: &str, v: &str) -> Result<f32, TrainError> {
    let bad = || setting(key, format!("'{v}' is not a number"));
    let x = match v.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            if b == 0.0 {
                return Err(bad());
            }
            (a / b) as f32
        }
        None => v.trim().parse::<f32>().map_err(|_| bad())?,
    };
    if x.is_finite() { Ok(x) } else { Err(bad()) }
}

impl FromStr for Preprocess {
    type Err = TrainError;

    /// Parse the compact form described on [`Preprocess`]; the empty string is the default.
    fn from_str(s: &str) -> Result<Self, TrainError> {
        let mut p = Preprocess::default();
        for field in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=').ok_or_else(|| setting(field, "expected key=value".into()))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "resize" => {
                    p.resize = Some(if value.contains(['x', 'X']) {
                        let (height, width) = parse_size(key, value)?;
                        Resize::Exact { height, width }
                    } else {
                        Resize::ShorterSide(parse_size(key, value)?.0)
                    })
                }
                "crop" => p.crop = Some(parse_size(key, value)?),
                "mean" | "std" => {
                    let v = value.split(':').map(|x| parse_number(key, x)).collect::<Result<Vec<_>, _>>()?;
                    if key == "mean" {
                        p.mean = v;
                    } else {
                        p.std = v;
                    }
                }
                "scale" => p.scale = parse_number(key, value)?,
                "order" => {
                    p.order = match value.to_ascii_lowercase().as_str() {
                        "rgb" => ChannelOrder::Rgb,
                        "bgr" => ChannelOrder::Bgr,
                        "gray" | "grey" => ChannelOrder::Gray,
                        _ => return Err(setting(key, format!("'{value}' (expected rgb, bgr or gray)"))),
                    }
                }
                "layout" => {
                    p.layout = match value.to_ascii_lowercase().as_str() {
                        "nchw" => Layout::Nchw,
                        "nhwc" => Layout::Nhwc,
                        _ => return Err(setting(key, format!("'{value}' (expected nchw or nhwc)"))),
                    }
                }
                _ => {
                    return Err(setting(
                        key,
                        "unknown key (expected resize, crop, mean, std, scale, order, layout)".into(),
                    ));
                }
            }
        }
        p.normalization()?;
        Ok(p)
    }
}

impl fmt::Display for Preprocess {
    /// The compact form, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(":");
        let mut parts = Vec::new();
        match self.resize {
            Some(Resize::ShorterSide(s)) => parts.push(format!("resize={s}")),
            Some(Resize::Exact { height, width }) => parts.push(format!("resize={height}x{width}")),
            None => {}
        }
        if let Some((h, w)) = self.crop {
            parts.push(format!("crop={h}x{w}"));
        }
        parts.push(format!("mean={}", join(&self.mean)));
        parts.push(format!("std={}", join(&self.std)));
        parts.push(format!("scale={}", self.scale));
        let order = match self.order {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Bgr => "bgr",
            ChannelOrder::Gray => "gray",
        };
        parts.push(format!("order={order}"));
        parts.push(format!("layout={}", if self.layout == Layout::Nchw { "nchw" } else { "nhwc" }));
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_compact_form_and_prints_it_back() {
        let p: Preprocess =
            "resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,order=rgb,layout=nchw,scale=1/255"
                .parse()
                .unwrap();
        assert_eq!(p.resize, Some(Resize::ShorterSide(256)));
        assert_eq!(p.crop, Some((224, 224)));
        assert_eq!(p.mean, vec![0.485, 0.456, 0.406]);
        assert_eq!(p.std, vec![0.229, 0.224, 0.225]);
        assert_eq!(p.scale, 1.0 / 255.0);
        assert_eq!((p.order, p.layout), (ChannelOrder::Rgb, Layout::Nchw));
        assert_eq!(p.to_string().parse::<Preprocess>().unwrap(), p);

        let q: Preprocess = " resize=300x200 , crop=32x48,order=BGR,layout=nhwc,scale=0.5,mean=127.5".parse().unwrap();
        assert_eq!(q.resize, Some(Resize::Exact { height: 300, width: 200 }));
        assert_eq!(q.crop, Some((32, 48)));
        assert_eq!((q.order, q.layout, q.scale), (ChannelOrder::Bgr, Layout::Nhwc, 0.5));
        assert_eq!(q.to_string().parse::<Preprocess>().unwrap(), q);
        assert_eq!("".parse::<Preprocess>().unwrap(), Preprocess::default());
        assert_eq!("order=gray,mean=0.5".parse::<Preprocess>().unwrap().order, ChannelOrder::Gray);
        assert_eq!(
            "order=gray,mean=0.5,std=2".parse::<Preprocess>().unwrap().normalization().unwrap(),
            vec![(0.5, 2.0)]
        );
    }

    #[test]
    fn malformed_specs_are_setting_errors_naming_the_key() {
        for (bad, key) in [
            ("size=3", "size"),
            ("resize", "resize"),
            ("resize=0", "resize"),
            ("crop=3x", "crop"),
            ("crop=-4", "crop"),
            ("mean=a:b:c", "mean"),
            ("mean=1:2", "mean"),
            ("std=0", "std"),
            ("std=1:1:0", "std"),
            ("scale=1/0", "scale"),
            ("scale=x", "scale"),
            ("order=rgba", "order"),
            ("layout=chw", "layout"),
            ("order=gray,mean=1:2:3", "mean"),
        ] {
            match bad.parse::<Preprocess>() {
                Err(TrainError::Setting { field: "preprocess", reason }) => {
                    assert!(reason.starts_with(key), "{bad}: {reason}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
