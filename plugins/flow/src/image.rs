//! The two rasters the estimator works on: grayscale images and flow fields.

/// A single-channel image with f32 intensities (0..255 for 8-bit input),
/// row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl GrayImage {
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> GrayImage {
        assert_eq!(data.len(), width * height, "gray image {width}x{height} needs {} values", width * height);
        GrayImage { width, height, data }
    }

    /// Luma of packed RGB u8 pixels, with the weights OpenCV's RGB2GRAY uses
    /// (ITU-R BT.601), so results are comparable with OpenCV's DIS.
    pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> GrayImage {
        assert_eq!(rgb.len(), width * height * 3, "RGB image {width}x{height} needs {} bytes", width * height * 3);
        let data = rgb.chunks_exact(3).map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect();
        GrayImage { width, height, data }
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Bilinear sample at a real position; outside the image the border
    /// pixels are repeated.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        self.sample_in_row(&self.sample_row(y), x)
    }

    /// The rows and weight a bilinear sample at height `y` blends: worked
    /// out once for many samples at one height.
    #[inline]
    pub(crate) fn sample_row(&self, y: f32) -> SampleRow {
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let top = (y as usize).min(self.height.saturating_sub(2));
        let bottom = (top + 1).min(self.height - 1);
        SampleRow { top: top * self.width, bottom: bottom * self.width, weight: y - top as f32 }
    }

    /// [`GrayImage::sample`] at `x` on the height `row` was made for.
    #[inline]
    pub(crate) fn sample_in_row(&self, row: &SampleRow, x: f32) -> f32 {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let x0 = (x as usize).min(self.width.saturating_sub(2));
        let x1 = (x0 + 1).min(self.width - 1);
        let fx = x - x0 as f32;
        let (t, b) = (&self.data[row.top..][..self.width], &self.data[row.bottom..][..self.width]);
        let top = t[x0] + fx * (t[x1] - t[x0]);
        let bottom = b[x0] + fx * (b[x1] - b[x0]);
        top + row.weight * (bottom - top)
    }
}

/// A dense displacement field: (u, v) per pixel, interleaved, row-major,
/// in pixels of the grid it was computed on.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowField {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl FlowField {
    pub fn zeros(width: usize, height: usize) -> FlowField {
        FlowField { width, height, data: vec![0.0; width * height * 2] }
    }

    pub fn new(width: usize, height: usize, data: Vec<f32>) -> FlowField {
        assert_eq!(data.len(), width * height * 2, "flow field {width}x{height} needs {} values", width * height * 2);
        FlowField { width, height, data }
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> (f32, f32) {
        let i = 2 * (y * self.width + x);
        (self.data[i], self.data[i + 1])
    }

    /// Mean endpoint error against `truth` (same size), in pixels.
    pub fn endpoint_error(&self, truth: &FlowField) -> f64 {
        assert_eq!((self.width, self.height), (truth.width, truth.height), "flow fields differ in size");
        let sum: f64 = self
            .data
            .chunks_exact(2)
            .zip(truth.data.chunks_exact(2))
            .map(|(a, b)| (((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)) as f64).sqrt())
            .sum();
        sum / (self.width * self.height).max(1) as f64
    }
}

/// Where a bilinear sample at one height reads: the offsets of the rows
/// above and below it, and the lower row's weight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SampleRow {
    top: usize,
    bottom: usize,
    weight: f32,
}
