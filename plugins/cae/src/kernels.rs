//! CPU kernels for the autoencoder of net.rs: its training step (forward,
//! backward, per-sample weighted loss) and its eval-mode forward, on plain
//! f32 buffers.
//!
//! Why not burn-flex's own autodiff on the CPU: its backward computes every
//! weight gradient as one product with a small output and a reduction over
//! all B * H * W positions, which `gemm` runs on one core, so a training step
//! used barely more than one of two cores (docs/benchmarks.md, "Fit"). Here
//! the batch is cut into sample chunks once; every layer runs its chunks in
//! parallel (im2col + `gemm` per chunk), and weight gradients are summed
//! from per-chunk partials, so the backward uses every core as well. Only
//! BatchNorm needs the whole batch, through per-channel sums.
//!
//! burn stays the owner of the model: parameters are read from the burn
//! module before a step and the gradients handed to burn's Adam after it
//! (model.rs), so checkpoints, the optimizer and the GPU path are unchanged,
//! and the tests check these kernels against burn's autodiff.

use crate::columns::Taps;
use crate::config::Precision;
use crate::matmul::{matmul, matmul_to, reads_in_place, Mat, Operand};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Mutex;

const BN_EPSILON: f32 = 1e-5;

/// One layer of the network, in forward order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// k x k convolution, stride 1, padding k / 2, with bias.
    /// Parameters: weight [cout, cin, k, k], bias [cout].
    Conv { cin: usize, cout: usize, k: usize },
    /// ConvTranspose2d(c -> c, k 3, stride 2, padding 1, output padding 1).
    /// Parameters: weight [c (in), c (out), 3, 3], bias [c].
    Up { c: usize },
    /// BatchNorm2d, then ReLU. Parameters: gamma [c], beta [c].
    BnRelu { c: usize },
    /// 2 x 2 max pooling, stride 2.
    Pool,
}

impl Op {
    /// Shapes of this layer's parameters, in the order the kernels take them.
    pub fn param_shapes(self) -> Vec<Vec<usize>> {
        match self {
            Op::Conv { cin, cout, k } => vec![vec![cout, cin, k, k], vec![cout]],
            Op::Up { c } => vec![vec![c, c, 3, 3], vec![c]],
            Op::BnRelu { c } => vec![vec![c], vec![c]],
            Op::Pool => vec![],
        }
    }
}

/// The layer list of net.rs's `Autoencoder` (docs/method.md 5.1).
pub fn layers(in_channels: usize, out_channels: usize, f: usize) -> Vec<Op> {
    let double = |a: usize, b: usize| {
        [Op::Conv { cin: a, cout: b, k: 3 }, Op::BnRelu { c: b }, Op::Conv { cin: b, cout: b, k: 3 }, Op::BnRelu { c: b }]
    };
    let mut ops = Vec::new();
    ops.extend(double(in_channels, f));
    for (a, b) in [(f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f)] {
        ops.push(Op::Pool);
        ops.extend(double(a, b));
    }
    for c in [8 * f, 4 * f, 2 * f] {
        ops.push(Op::Up { c });
        ops.extend(double(c, c / 2));
    }
    ops.push(Op::Conv { cin: f, cout: out_channels, k: 1 });
    ops
}

/// How many weights (f32 values) the layers `ops` have.
pub fn parameter_count(ops: &[Op]) -> u64 {
    ops.iter()
        .flat_map(|op| op.param_shapes())
        .map(|shape| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)))
        .fold(0, u64::saturating_add)
}

/// What one training step of `layers` holds at least, in bytes: each
/// parameter with its gradient and Adam's two moments, and every layer's
/// output for `batch` cubes of `in_channels` x `size` x `size` kept for the
/// backward pass, plus its gradient. Saturates instead of overflowing, so
/// absurd options give a huge figure, never a wrong small one.
pub fn training_bytes(ops: &[Op], in_channels: usize, size: usize, batch: usize) -> u64 {
    let params = parameter_count(ops);
    let (mut channels, mut side) = (in_channels as u64, size as u64);
    let mut per_sample = 0u64;
    for op in ops {
        match *op {
            Op::Conv { cout, .. } => channels = cout as u64,
            Op::Up { .. } => side = side.saturating_mul(2),
            Op::BnRelu { .. } => {}
            Op::Pool => side /= 2,
        }
        per_sample = per_sample.saturating_add(channels.saturating_mul(side).saturating_mul(side));
    }
    let values = params.saturating_mul(4).saturating_add(per_sample.saturating_mul(batch as u64).saturating_mul(2));
    values.saturating_mul(4)
}

/// The model's values: parameters in `layers` order (two per Conv, Up and
/// BnRelu), and the running mean and variance of each BnRelu.
pub struct Weights<'a> {
    pub params: &'a [Vec<f32>],
    pub running: &'a [(Vec<f32>, Vec<f32>)],
}

/// What a training step computed.
pub struct StepResult {
    /// sum_i w_i * SSE_i / (B * C * H * W).
    pub loss: f32,
    /// Gradients of the loss, shaped and ordered like `Weights::params`.
    pub grads: Vec<Vec<f32>>,
    /// Per BnRelu, the batch statistics it normalized with.
    pub batch_stats: Vec<BatchStats>,
}

/// A BatchNorm layer's statistics over one training batch.
pub struct BatchStats {
    pub mean: Vec<f32>,
    /// Biased (divided by `count`).
    pub var: Vec<f32>,
    /// Values per channel: batch size times the layer's H * W.
    pub count: usize,
}

/// Samples cut into chunks, the unit of parallel work. Activations are
/// stored chunk after chunk, each chunk as [C, n * H * W] (channel rows over
/// the chunk's samples), so every chunk is one contiguous slice.
struct Chunks {
    ranges: Vec<Range<usize>>,
}

/// The most samples in one chunk of a training step. A chunk's column
/// buffer is 9 x channels x samples x H x W values: at 8 samples and 32
/// channels of 32 x 32 that is 9.4 MB, and a batch of 256 in 8 chunks gave
/// 38 MB per chunk, streamed through memory between im2col and the product
/// (a batch-256 step 25% slower than at this cap, docs/benchmarks.md,
/// "Chunks of at most 8 samples").
const MAX_CHUNK_SAMPLES: usize = 8;

impl Chunks {
    fn new(batch: usize) -> Chunks {
        // A few chunks per thread balance the load; more only shrink the products.
        let count = (rayon::current_num_threads() * 4).max(batch.div_ceil(MAX_CHUNK_SAMPLES)).clamp(1, batch.max(1));
        let ranges = (0..count).map(|i| i * batch / count..(i + 1) * batch / count).filter(|r| !r.is_empty()).collect();
        Chunks { ranges }
    }

    /// All `batch` samples as one chunk, for a caller that runs several
    /// batches in parallel itself.
    fn single(batch: usize) -> Chunks {
        Chunks { ranges: std::iter::once(0..batch).collect() }
    }

    fn batch(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.end)
    }

    /// Samples in the largest chunk.
    fn largest(&self) -> usize {
        self.ranges.iter().map(|r| r.len()).max().unwrap_or(0)
    }

    fn split<'a>(&self, data: &'a [f32], per_sample: usize) -> Vec<&'a [f32]> {
        let mut rest = data;
        self.ranges
            .iter()
            .map(|r| {
                let (head, tail) = rest.split_at(r.len() * per_sample);
                rest = tail;
                head
            })
            .collect()
    }

    fn split_mut<'a>(&self, data: &'a mut [f32], per_sample: usize) -> Vec<&'a mut [f32]> {
        let mut rest = data;
        self.ranges
            .iter()
            .map(|r| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.len() * per_sample);
                rest = tail;
                head
            })
            .collect()
    }

    /// [B, C, H * W] (samples outermost) into chunked layout.
    fn chunked(&self, samples: &[f32], c: usize, hw: usize) -> Vec<f32> {
        let mut out = uninit(samples.len());
        let blocks = self.split_mut(&mut out, c * hw);
        blocks.into_par_iter().zip(self.ranges.par_iter()).for_each(|(block, range)| {
            let cols = range.len() * hw;
            for (n, sample) in range.clone().enumerate() {
                for ch in 0..c {
                    let src = &samples[(sample * c + ch) * hw..][..hw];
                    block[ch * cols + n * hw..][..hw].copy_from_slice(src);
                }
            }
        });
        out
    }
}

/// Activation buffers of finished layers and steps, reused by the next ones:
/// a fresh large allocation is mapped anew by the system and pays a page
/// fault per 4 KiB (and a copy of the zero page when first read) each time.
static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
const POOL_BUFFERS: usize = 256;

/// `len` zeros, in a recycled buffer when one is large enough.
fn zeros(len: usize) -> Vec<f32> {
    let mut buffer = uninit(len);
    buffer.fill(0.0);
    buffer
}

/// A buffer of `len` values for a kernel that overwrites every one of them
/// (a recycled buffer keeps whatever it held).
fn uninit(len: usize) -> Vec<f32> {
    let reused = POOL.lock().ok().and_then(|mut pool| {
        let best = pool.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i))
    });
    let mut buffer = reused.unwrap_or_else(|| Vec::with_capacity(len));
    // Written, not calloc'ed: the pages are faulted in once, for writing.
    buffer.resize(len, 0.0);
    buffer
}

fn recycle(buffer: Vec<f32>) {
    if let Ok(mut pool) = POOL.lock() {
        if pool.len() < POOL_BUFFERS && buffer.capacity() > 0 {
            pool.push(buffer);
        }
    }
}

/// An activation: `data` in `Chunks` layout, `c` channels of `h` x `w`.
/// Its buffer goes back to the pool when it is dropped.
struct Activation {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Activation {
    fn zeros(c: usize, h: usize, w: usize, batch: usize) -> Activation {
        Activation { c, h, w, data: zeros(batch * c * h * w) }
    }

    /// For kernels that write every value.
    fn uninit(c: usize, h: usize, w: usize, batch: usize) -> Activation {
        Activation { c, h, w, data: uninit(batch * c * h * w) }
    }

    fn per_sample(&self) -> usize {
        self.c * self.h * self.w
    }
}

impl Drop for Activation {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.data));
    }
}

thread_local! {
    /// Column buffers reused across layers and steps: a fresh multi-megabyte
    /// buffer per chunk costs its page faults every time.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch buffer of `len` values (contents unspecified).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        // A nested use (not expected) falls back to a fresh buffer instead of panicking.
        match cell.try_borrow_mut() {
            Ok(mut buffer) => {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                f(&mut buffer[..len])
            }
            Err(_) => f(&mut vec![0f32; len]),
        }
    })
}

/// dw (row-major m x taps) += a (row-major m x cols) x colᵀ, for `col` a
/// taps x cols column matrix: a weight gradient, reduced over every
/// position of a chunk. The product is formed column-major and added
/// transposed: into a row-major destination `gemm` would transpose the whole
/// problem and repack all of `col` (taps = 9 x channels rows) as its left
/// operand, where column-major it packs `a` (m rows), and the packing was
/// the largest cost after the multiply-adds (docs/benchmarks.md, "Weight
/// gradients formed column-major").
fn add_weight_gradient(precision: Precision, m: usize, taps: usize, cols: usize, a: &[f32], col: Operand<'_>, dw: &mut [f32]) {
    let mut product = vec![0f32; m * taps];
    matmul_to(precision, m, taps, cols, &mut product, [1, m], Mat::rows(a, cols).into(), col.t());
    for (t, column) in product.chunks_exact(m).enumerate() {
        for (row, v) in column.iter().enumerate() {
            dw[row * taps + t] += v;
        }
    }
}

/// A convolution's weight [cout, cin, k, k] turned by 180 degrees, input
/// and output channels swapped: [cin, cout, k, k], the kernel that
/// convolves an output gradient into the input gradient.
fn turned_kernel(weight: &[f32], cin: usize, cout: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut turned = vec![0f32; weight.len()];
    for co in 0..cout {
        for ci in 0..cin {
            let from = &weight[(co * cin + ci) * kk..][..kk];
            let to = &mut turned[(ci * cout + co) * kk..][..kk];
            to.iter_mut().zip(from.iter().rev()).for_each(|(t, &v)| *t = v);
        }
    }
    turned
}

/// ConvTranspose2d with kernel 3, stride 2, padding 1 and output padding 1,
/// along one axis: input i, through kernel tap ki, reaches output 2i - 1 +
/// ki, which has parity `UP_REACH[ki].0` and lies in row i + `UP_REACH[ki].1`
/// of the outputs of that parity.
const UP_REACH: [(usize, isize); 3] = [(1, -1), (0, 0), (1, 0)];

/// Adds `bias[ch]` to every value of channel row `ch`, then clamps at 0
/// when `relu`.
fn add_bias(block: &mut [f32], bias: &[f32], relu: bool) {
    let cols = block.len() / bias.len();
    for (row, &b) in block.chunks_mut(cols).zip(bias) {
        if relu {
            row.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
        } else {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// The sum of `term(a[i], b[i])` over `a` and `b` in step: in 16 f32 lanes
/// within blocks of 1,024 values, in f64 across blocks. The lanes vectorize
/// (an f64 sum in order does not: each addition waits for the last), and a
/// lane adds at most 64 values, so the sum stays within a few f32 roundings
/// of the exact one for the activations these sums run over.
fn lane_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    const BLOCK: usize = 1024;
    debug_assert_eq!(a.len(), b.len());
    let mut total = 0f64;
    for (block_a, block_b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut lanes = [0f32; LANES];
        let (runs_a, runs_b) = (block_a.chunks_exact(LANES), block_b.chunks_exact(LANES));
        let tail: f32 = runs_a.remainder().iter().zip(runs_b.remainder()).map(|(&x, &y)| term(x, y)).sum();
        for (run_a, run_b) in runs_a.zip(runs_b) {
            for lane in 0..LANES {
                lanes[lane] += term(run_a[lane], run_b[lane]);
            }
        }
        total += lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// Adds each channel row's sum to `sums`.
fn add_row_sums(block: &[f32], sums: &mut [f32]) {
    let cols = block.len() / sums.len();
    for (row, s) in block.chunks(cols).zip(sums.iter_mut()) {
        *s += row.iter().sum::<f32>();
    }
}

/// Sums per-chunk (weight, bias) gradients in chunk order, so that a step
/// gives the same result whichever thread ran which chunk.
fn sum_in_order(partials: Vec<(Vec<f32>, Vec<f32>)>) -> (Vec<f32>, Vec<f32>) {
    let mut parts = partials.into_iter();
    let (mut dw, mut db) = parts.next().expect("at least one chunk");
    for (w, b) in parts {
        dw.iter_mut().zip(w).for_each(|(x, y)| *x += y);
        db.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }
    (dw, db)
}

/// The layers' own kernels, each over all chunks of an activation.
struct Net<'a> {
    chunks: &'a Chunks,
    precision: Precision,
}

impl Net<'_> {
    /// Runs `f` with the column matrix of `taps` over a chunk's `image`
    /// (`samples` images per plane, `cols` positions) as an operand of the
    /// m x n x k product `dims`: read in place where the product is a bf16
    /// one, else written out into a scratch buffer (im2col). Without taps
    /// (a 1 x 1 convolution) the matrix is the image itself.
    fn with_columns<R>(
        &self,
        taps: Option<&Taps>,
        image: &[f32],
        [samples, cols]: [usize; 2],
        [m, n, depth]: [usize; 3],
        f: impl FnOnce(Operand<'_>) -> R,
    ) -> R {
        let Some(taps) = taps else { return f(Mat::rows(image, cols).into()) };
        let columns = taps.over(image, samples);
        if columns.in_place() && reads_in_place(self.precision, m, n, depth) {
            return f(Operand::Columns(&columns, false));
        }
        with_scratch(taps.rows() * cols, |col| {
            columns.write(col);
            f(Mat::rows(col, cols).into())
        })
    }

    /// The taps of a k x k convolution over `channels` planes of h x w
    /// (none for 1 x 1: its columns are its input).
    fn window(&self, channels: usize, k: usize, size: [usize; 2]) -> Option<Taps> {
        (k > 1).then(|| Taps::window(channels, k, size, self.chunks.largest(), self.may_read_in_place()))
    }

    /// A convolution, with a ReLU on its output when `relu` (eval mode,
    /// where BatchNorm is folded into the weights).
    fn conv(&self, x: &Activation, [cin, cout, k]: [usize; 3], weight: &[f32], bias: &[f32], relu: bool) -> Activation {
        let (hw, taps) = (x.h * x.w, cin * k * k);
        let window = self.window(cin, k, [x.h, x.w]);
        let mut y = Activation::uninit(cout, x.h, x.w, self.chunks.batch());
        let outs = self.chunks.split_mut(&mut y.data, cout * hw);
        let ins = self.chunks.split(&x.data, x.per_sample());
        outs.into_par_iter().zip(ins).zip(&self.chunks.ranges).for_each(|((out, input), range)| {
            let cols = range.len() * hw;
            self.with_columns(window.as_ref(), input, [range.len(), cols], [cout, cols, taps], |col| {
                matmul(self.precision, cout, cols, taps, out, Mat::rows(weight, taps).into(), col)
            });
            add_bias(out, bias, relu);
        });
        y
    }

    /// Gradients of a convolution: (weight, bias, input when `need_input`).
    /// The input gradient is the output gradient convolved with the kernel
    /// turned by 180 degrees, input and output channels swapped: the same
    /// product as a forward convolution, so that its columns too are read
    /// in place by the bf16 products (the transposed product followed by
    /// col2im wrote and read back a column buffer of 9 x the input's
    /// channels).
    fn conv_backward(
        &self,
        x: &Activation,
        dy: &Activation,
        [cin, cout, k]: [usize; 3],
        weight: &[f32],
        need_input: bool,
    ) -> (Vec<f32>, Vec<f32>, Option<Activation>) {
        let (hw, taps, back_taps) = (x.h * x.w, cin * k * k, cout * k * k);
        let window = self.window(cin, k, [x.h, x.w]);
        let back = need_input.then(|| (turned_kernel(weight, cin, cout, k), self.window(cout, k, [x.h, x.w])));
        // Every value is written by the product.
        let mut dx = need_input.then(|| Activation::uninit(cin, x.h, x.w, self.chunks.batch()));
        let dx_blocks: Vec<Option<&mut [f32]>> = match &mut dx {
            Some(d) => self.chunks.split_mut(&mut d.data, x.per_sample()).into_iter().map(Some).collect(),
            None => self.chunks.ranges.iter().map(|_| None).collect(),
        };
        let (dw, db) = self.backward_chunks(x, dy, dx_blocks, cout * taps, |input, grad, dx_block, range, dw| {
            let cols = range.len() * hw;
            // dW += dY x col^T.
            self.with_columns(window.as_ref(), input, [range.len(), cols], [cout, taps, cols], |col| {
                add_weight_gradient(self.precision, cout, taps, cols, grad, col, dw)
            });
            if let (Some(dx_block), Some((turned, back_window))) = (dx_block, &back) {
                self.with_columns(back_window.as_ref(), grad, [range.len(), cols], [cin, cols, back_taps], |col| {
                    matmul(self.precision, cin, cols, back_taps, dx_block, Mat::rows(turned, back_taps).into(), col)
                });
            }
        });
        (dw, db, dx)
    }

    /// The part of a backward pass shared by `Conv` and `Up`: runs `chunk` on
    /// every chunk in parallel with its input, output gradient, input-gradient
    /// block (when wanted), samples and its own weight-gradient partial of
    /// `weight_len` values; returns the weight gradient and the bias gradient
    /// (the output gradient's channel sums), both summed in chunk order.
    fn backward_chunks(
        &self,
        x: &Activation,
        dy: &Activation,
        dx_blocks: Vec<Option<&mut [f32]>>,
        weight_len: usize,
        chunk: impl Fn(&[f32], &[f32], Option<&mut [f32]>, &Range<usize>, &mut [f32]) + Sync,
    ) -> (Vec<f32>, Vec<f32>) {
        let work: Vec<_> = self
            .chunks
            .split(&x.data, x.per_sample())
            .into_iter()
            .zip(self.chunks.split(&dy.data, dy.per_sample()))
            .zip(dx_blocks)
            .zip(&self.chunks.ranges)
            .collect();
        let partials = work
            .into_par_iter()
            .map(|(((input, grad), dx_block), range)| {
                let (mut dw, mut db) = (vec![0f32; weight_len], vec![0f32; dy.c]);
                add_row_sums(grad, &mut db);
                chunk(input, grad, dx_block, range, &mut dw);
                (dw, db)
            })
            .collect();
        sum_in_order(partials)
    }

    /// The taps of a transposed convolution over `c` channels of h x w
    /// inputs, read from its output's four parity planes (plane (2a + b) *
    /// c + co holds output channel co at (2i + a, 2j + b)): row (co, ki, kj)
    /// reads, at input (i, j), the output value (2i - 1 + ki, 2j - 1 + kj)
    /// that kernel tap (ki, kj) links it to ([`UP_REACH`]), a shift of 0 or -1
    /// in its parity plane.
    fn up_taps(&self, c: usize, size: [usize; 2]) -> Taps {
        let shift = |ki: usize, kj: usize| 2 * usize::from(UP_REACH[ki].1 < 0) + usize::from(UP_REACH[kj].1 < 0);
        let rows = (0..c)
            .flat_map(|co| (0..9).map(move |t| (co, t / 3, t % 3)))
            .map(|(co, ki, kj)| ((2 * UP_REACH[ki].0 + UP_REACH[kj].0) * c + co, shift(ki, kj)))
            .collect();
        Taps::new(vec![[0, 0], [0, -1], [-1, 0], [-1, -1]], rows, size, self.chunks.largest(), self.may_read_in_place())
    }

    /// Whether any of this net's products may read columns in place.
    fn may_read_in_place(&self) -> bool {
        (self.precision == Precision::Bf16 && crate::matmul::bf16::available()) || crate::matmul::f32_reads_in_place()
    }

    /// The transposed convolution: the product W^T x X gives, per input
    /// position, the 9 x c values it adds to the output ([`Taps::add_back`]
    /// of [`up_taps`](Self::up_taps)); they are added onto the output's
    /// parity planes as shifted runs, and the planes interleaved into the
    /// output with the bias. (Adding them straight onto the output went a
    /// value at a time, every other one.)
    fn up(&self, x: &Activation, weight: &[f32], bias: &[f32]) -> Activation {
        let (c, [h, w]) = (x.c, [x.h, x.w]);
        let (hw, depth) = (h * w, c * 9);
        let taps = self.up_taps(c, [h, w]);
        // Every value is written by the interleave.
        let mut y = Activation::uninit(c, 2 * h, 2 * w, self.chunks.batch());
        let outs = self.chunks.split_mut(&mut y.data, c * 4 * hw);
        let ins = self.chunks.split(&x.data, x.per_sample());
        outs.into_par_iter().zip(ins).zip(&self.chunks.ranges).for_each(|((out, input), range)| {
            let (n, cols) = (range.len(), range.len() * hw);
            let mut parts = zeros(4 * c * cols);
            with_scratch(depth * cols, |col| {
                // Weight [in, (out, ki, kj)] transposed times the input: one column per input position.
                matmul(self.precision, depth, cols, c, col, Mat::transposed(weight, depth).into(), Mat::rows(input, cols).into());
                taps.add_back(col, n, &mut parts);
            });
            for (co, plane) in out.chunks_exact_mut(4 * cols).enumerate() {
                for (row, line) in plane.chunks_exact_mut(2 * w).enumerate() {
                    let (s, y) = (row / (2 * h), row % (2 * h));
                    for b in 0..2 {
                        let at = ((2 * (y % 2) + b) * c + co) * cols + s * hw + y / 2 * w;
                        line.iter_mut().skip(b).step_by(2).zip(&parts[at..at + w]).for_each(|(d, v)| *d = v + bias[co]);
                    }
                }
            }
            recycle(parts);
        });
        y
    }

    /// Gradients of the transposed convolution: dX = W x col and dW += X x
    /// col^T, where col reads the output gradient at the input positions:
    /// entry ((co, ki, kj), (i, j)) is dY at (2i - 1 + ki, 2j - 1 + kj). Split
    /// into its four parity planes first, dY is read there at shifts of 0
    /// or -1, a column matrix like a convolution's, so the bf16 products
    /// read it in place too.
    fn up_backward(&self, x: &Activation, dy: &Activation, weight: &[f32]) -> (Vec<f32>, Vec<f32>, Activation) {
        let (c, [h, w]) = (x.c, [x.h, x.w]);
        let (hw, depth) = (h * w, c * 9);
        let taps = self.up_taps(c, [h, w]);
        let mut dx = Activation::uninit(c, h, w, self.chunks.batch());
        let dx_blocks = self.chunks.split_mut(&mut dx.data, x.per_sample()).into_iter().map(Some).collect();
        let (dw, db) = self.backward_chunks(x, dy, dx_blocks, c * depth, |input, grad, dx_block, range, dw| {
            let (n, cols) = (range.len(), range.len() * hw);
            let dx_block = dx_block.expect("an input gradient for every chunk");
            // Plane (2a + b) * c + co holds dY[co] at (2i + a, 2j + b).
            let mut parts = uninit(4 * c * cols);
            for (co, plane) in grad.chunks_exact(4 * cols).enumerate() {
                for (row, line) in plane.chunks_exact(2 * w).enumerate() {
                    let (s, y) = (row / (2 * h), row % (2 * h));
                    for b in 0..2 {
                        let at = ((2 * (y % 2) + b) * c + co) * cols + s * hw + y / 2 * w;
                        parts[at..at + w].iter_mut().zip(line.iter().skip(b).step_by(2)).for_each(|(d, v)| *d = *v);
                    }
                }
            }
            self.with_columns(Some(&taps), &parts, [n, cols], [c, depth, cols], |col| {
                add_weight_gradient(self.precision, c, depth, cols, input, col, dw)
            });
            self.with_columns(Some(&taps), &parts, [n, cols], [c, cols, depth], |col| {
                matmul(self.precision, c, cols, depth, dx_block, Mat::rows(weight, depth).into(), col)
            });
            recycle(parts);
        });
        (dw, db, dx)
    }

    /// Per-channel mean and biased variance over the whole batch (two
    /// passes: the variance about the mean, not from the mean square).
    fn channel_stats(&self, x: &Activation) -> (Vec<f32>, Vec<f32>) {
        let blocks = self.chunks.split(&x.data, x.per_sample());
        let count = (self.chunks.batch() * x.h * x.w) as f64;
        let rows = |ch: usize| {
            blocks.iter().map(move |b| {
                let cols = b.len() / x.c;
                &b[ch * cols..][..cols]
            })
        };
        (0..x.c)
            .into_par_iter()
            .map(|ch| {
                let mean = rows(ch).map(|row| lane_sum(row, row, |v, _| v)).sum::<f64>() / count;
                let m = mean as f32;
                let var = rows(ch).map(|row| lane_sum(row, row, |v, _| (v - m) * (v - m))).sum::<f64>() / count;
                (m, var as f32)
            })
            .unzip()
    }

    /// max(0, gamma * (x - mean) / sqrt(var + eps) + beta) per channel.
    fn bn_relu(&self, x: &Activation, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32]) -> Activation {
        let mut y = Activation::uninit(x.c, x.h, x.w, self.chunks.batch());
        let scale: Vec<f32> = gamma.iter().zip(var).map(|(g, v)| g / (v + BN_EPSILON).sqrt()).collect();
        let per_sample = y.per_sample();
        let blocks = self.chunks.split_mut(&mut y.data, per_sample);
        blocks.into_par_iter().zip(self.chunks.split(&x.data, per_sample)).for_each(|(out, input)| {
            let cols = out.len() / x.c;
            for (ch, (dst, src)) in out.chunks_mut(cols).zip(input.chunks(cols)).enumerate() {
                let (s, m, b) = (scale[ch], mean[ch], beta[ch]);
                dst.iter_mut().zip(src).for_each(|(d, v)| *d = (s * (v - m) + b).max(0.0));
            }
        });
        y
    }

    /// Gradients of training-mode BatchNorm + ReLU: (gamma, beta, input).
    fn bn_relu_backward(
        &self,
        x: &Activation,
        dy: &Activation,
        gamma: &[f32],
        beta: &[f32],
        stats: &BatchStats,
    ) -> (Vec<f32>, Vec<f32>, Activation) {
        let (mean, var, count) = (&stats.mean, &stats.var, stats.count as f32);
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPSILON).sqrt()).collect();
        let xs = self.chunks.split(&x.data, x.per_sample());
        let dys = self.chunks.split(&dy.data, dy.per_sample());
        let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..x.c)
            .into_par_iter()
            .map(|ch| {
                let (m, s, g, b) = (mean[ch], inv_std[ch], gamma[ch], beta[ch]);
                // The ReLU passes a gradient where its output was positive.
                let passed = |v: f32, dz: f32| if g * ((v - m) * s) + b > 0.0 { dz } else { 0.0 };
                let (mut sum_xhat, mut sum) = (0f64, 0f64);
                for (xb, db) in xs.iter().zip(&dys) {
                    let cols = xb.len() / x.c;
                    let (row, grad) = (&xb[ch * cols..][..cols], &db[ch * cols..][..cols]);
                    sum_xhat += lane_sum(row, grad, |v, dz| passed(v, dz) * ((v - m) * s));
                    sum += lane_sum(row, grad, passed);
                }
                (sum_xhat as f32, sum as f32)
            })
            .unzip();
        let mut dx = Activation::uninit(x.c, x.h, x.w, self.chunks.batch());
        let blocks = self.chunks.split_mut(&mut dx.data, x.per_sample());
        blocks.into_par_iter().zip(xs.par_iter().zip(&dys)).for_each(|(out, (xb, db))| {
            let cols = xb.len() / x.c;
            for ch in 0..x.c {
                let k = gamma[ch] * inv_std[ch];
                let (m_dz, m_dzx) = (dbeta[ch] / count, dgamma[ch] / count);
                let rows = xb[ch * cols..][..cols].iter().zip(&db[ch * cols..][..cols]);
                for (o, (&v, &g)) in out[ch * cols..][..cols].iter_mut().zip(rows) {
                    let xhat = (v - mean[ch]) * inv_std[ch];
                    let dz = if gamma[ch] * xhat + beta[ch] > 0.0 { g } else { 0.0 };
                    *o = k * (dz - m_dz - xhat * m_dzx);
                }
            }
        });
        (dgamma, dbeta, dx)
    }

    /// For each output row of 2 x 2 max pooling over a chunk's channel row
    /// (`samples` images of h x w): `f(input, output)`, the offsets of its
    /// first input row (the windows' top rows; the bottom rows follow, `w`
    /// values on) and of the output row.
    fn pool_rows(samples: usize, h: usize, w: usize, mut f: impl FnMut(usize, usize)) {
        let (ho, wo) = (h / 2, w / 2);
        for s in 0..samples {
            for i in 0..ho {
                f(s * h * w + 2 * i * w, s * ho * wo + i * wo);
            }
        }
    }

    fn pool(&self, x: &Activation) -> Activation {
        let (c, h, w) = (x.c, x.h, x.w);
        let mut y = Activation::uninit(c, h / 2, w / 2, self.chunks.batch());
        let per_sample = y.per_sample();
        let outs = self.chunks.split_mut(&mut y.data, per_sample);
        outs.into_par_iter().zip(self.chunks.split(&x.data, x.per_sample())).zip(&self.chunks.ranges).for_each(|((out, input), range)| {
            let (cols_in, cols_out) = (range.len() * h * w, range.len() * (h / 2) * (w / 2));
            for ch in 0..c {
                let row = &input[ch * cols_in..][..cols_in];
                let dst = &mut out[ch * cols_out..][..cols_out];
                Self::pool_rows(range.len(), h, w, |input, output| {
                    let (top, bottom) = row[input..input + 2 * w].split_at(w);
                    let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    for (o, (t, b)) in dst[output..output + w / 2].iter_mut().zip(windows) {
                        *o = [t[0], t[1], b[0], b[1]][window_argmax(t, b)];
                    }
                });
            }
        });
        y
    }

    fn pool_backward(&self, x: &Activation, dy: &Activation) -> Activation {
        let (c, h, w) = (x.c, x.h, x.w);
        // Windows cover an even-sized image whole, and every value is written below.
        let mut dx = match h % 2 == 0 && w % 2 == 0 {
            true => Activation::uninit(c, h, w, self.chunks.batch()),
            false => Activation::zeros(c, h, w, self.chunks.batch()),
        };
        let blocks = self.chunks.split_mut(&mut dx.data, x.per_sample());
        let work = self.chunks.split(&x.data, x.per_sample()).into_iter().zip(self.chunks.split(&dy.data, dy.per_sample()));
        blocks.into_par_iter().zip(work.collect::<Vec<_>>()).zip(&self.chunks.ranges).for_each(|((out, (input, grad)), range)| {
            let (cols_in, cols_out) = (range.len() * h * w, range.len() * (h / 2) * (w / 2));
            for ch in 0..c {
                let row = &input[ch * cols_in..][..cols_in];
                let g = &grad[ch * cols_out..][..cols_out];
                let dst = &mut out[ch * cols_in..][..cols_in];
                Self::pool_rows(range.len(), h, w, |input, output| {
                    let (top, bottom) = row[input..input + 2 * w].split_at(w);
                    let (dst_top, dst_bottom) = dst[input..input + 2 * w].split_at_mut(w);
                    let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    let outs = dst_top.chunks_exact_mut(2).zip(dst_bottom.chunks_exact_mut(2));
                    for (((t, b), (dt, db)), &gv) in windows.zip(outs).zip(&g[output..output + w / 2]) {
                        // The maximum takes the gradient (added to 0, as onto a zeroed buffer), the rest 0.
                        let best = window_argmax(t, b);
                        let pick = |k: usize| if best == k { 0.0 + gv } else { 0.0 };
                        (dt[0], dt[1], db[0], db[1]) = (pick(0), pick(1), pick(2), pick(3));
                    }
                });
            }
        });
        dx
    }
}

/// Which of a 2 x 2 window's values (`top[0], top[1], bottom[0], bottom[1]`)
/// is its maximum, the first one on ties, without branches: the max-pooling
/// comparisons are data-dependent and mispredicted about as often as not.
fn window_argmax(top: &[f32], bottom: &[f32]) -> usize {
    let (mut best, mut at) = (top[0], 0);
    for (k, v) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
        let greater = v > best;
        best = if greater { v } else { best };
        at = if greater { k } else { at };
    }
    at
}

/// Per-sample SSE between the output (chunked) and the target (chunked), in sample order.
fn per_sample_sse(chunks: &Chunks, out: &Activation, target: &[f32]) -> Vec<f32> {
    let hw = out.h * out.w;
    let per = out.per_sample();
    let pairs = chunks.split(&out.data, per).into_iter().zip(chunks.split(target, per));
    pairs
        .collect::<Vec<_>>()
        .into_par_iter()
        .zip(&chunks.ranges)
        .flat_map_iter(|((o, t), range)| {
            let cols = range.len() * hw;
            (0..range.len()).map(move |s| {
                (0..out.c)
                    .map(|ch| {
                        let at = ch * cols + s * hw;
                        lane_sum(&o[at..at + hw], &t[at..at + hw], |a, b| (a - b) * (a - b))
                    })
                    .sum::<f64>() as f32
            })
        })
        .collect()
}

fn check_shapes(ops: &[Op], weights: &Weights<'_>) {
    let shapes: Vec<Vec<usize>> = ops.iter().flat_map(|op| op.param_shapes()).collect();
    assert_eq!(shapes.len(), weights.params.len(), "kernels: parameter count");
    for (shape, values) in shapes.iter().zip(weights.params) {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "kernels: parameter of shape {shape:?}");
    }
    let norms = ops.iter().filter(|op| matches!(op, Op::BnRelu { .. })).count();
    assert_eq!(norms, weights.running.len(), "kernels: running statistics count");
}

/// The training-mode forward pass: BatchNorm normalizes with the batch's
/// statistics, which it records in `batch_stats`. Returns the input of
/// every layer, then the output.
fn forward(net: &Net<'_>, ops: &[Op], weights: &Weights<'_>, input: Activation, batch_stats: &mut Vec<BatchStats>) -> Vec<Activation> {
    let mut acts = vec![input];
    let mut p = 0;
    for op in ops {
        let x = acts.last().expect("the input at least");
        let y = match *op {
            Op::Conv { cin, cout, k } => net.conv(x, [cin, cout, k], &weights.params[p], &weights.params[p + 1], false),
            Op::Up { .. } => net.up(x, &weights.params[p], &weights.params[p + 1]),
            Op::BnRelu { .. } => {
                let (mean, var) = net.channel_stats(x);
                let y = net.bn_relu(x, &weights.params[p], &weights.params[p + 1], &mean, &var);
                batch_stats.push(BatchStats { mean, var, count: net.chunks.batch() * x.h * x.w });
                y
            }
            Op::Pool => net.pool(x),
        };
        p += op.param_shapes().len();
        acts.push(y);
    }
    acts
}

/// Input [B, C, S, S] (samples outermost) as the first layer's activation.
fn input_activation(chunks: &Chunks, input: &[f32], channels: usize, size: usize) -> Activation {
    Activation { c: channels, h: size, w: size, data: chunks.chunked(input, channels, size * size) }
}

/// A layer of the eval-mode network: each BatchNorm, normalizing with its
/// running statistics, is an affine map per channel, folded into the
/// convolution before it (scaled weights, shifted bias), and its ReLU into
/// that convolution's output pass.
enum EvalOp<'a> {
    Conv { dims: [usize; 3], weight: Vec<f32>, bias: Vec<f32>, relu: bool },
    Up { weight: &'a [f32], bias: &'a [f32] },
    Pool,
}

/// `ops` in eval mode, BatchNorm folded (see [`EvalOp`]).
fn eval_layers<'a>(ops: &[Op], weights: &Weights<'a>) -> Vec<EvalOp<'a>> {
    let mut layers = Vec::new();
    let (mut p, mut norm) = (0, 0);
    for op in ops {
        match *op {
            Op::Conv { cin, cout, k } => layers.push(EvalOp::Conv {
                dims: [cin, cout, k],
                weight: weights.params[p].clone(),
                bias: weights.params[p + 1].clone(),
                relu: false,
            }),
            Op::Up { .. } => layers.push(EvalOp::Up { weight: &weights.params[p], bias: &weights.params[p + 1] }),
            Op::BnRelu { .. } => {
                let Some(EvalOp::Conv { weight, bias, relu, .. }) = layers.last_mut() else {
                    panic!("kernels: a BatchNorm that does not follow a convolution");
                };
                let (gamma, beta) = (&weights.params[p], &weights.params[p + 1]);
                let (mean, var) = &weights.running[norm];
                let per_output = weight.len() / bias.len();
                for (o, (row, b)) in weight.chunks_mut(per_output).zip(bias.iter_mut()).enumerate() {
                    let scale = gamma[o] / (var[o] + BN_EPSILON).sqrt();
                    row.iter_mut().for_each(|w| *w *= scale);
                    *b = scale * (*b - mean[o]) + beta[o];
                }
                *relu = true;
                norm += 1;
            }
            Op::Pool => layers.push(EvalOp::Pool),
        }
        p += op.param_shapes().len();
    }
    layers
}

/// Samples an eval forward takes through the whole network at once: few
/// enough that a group's activations and column buffers stay in the
/// per-core caches (a breadth-first pass over the batch streams every
/// layer's output through memory), enough to keep the products wide.
const EVAL_GROUP: usize = 4;

/// Eval-mode (running BatchNorm statistics) SSE of each sample against `target`.
/// `input` is [B, Cin, S, S] and `target` [B, Cout, S, S], samples outermost.
/// Groups of [`EVAL_GROUP`] samples run depth-first, in parallel; nothing
/// but a group's current layer is kept.
pub fn errors(
    ops: &[Op],
    weights: &Weights<'_>,
    precision: Precision,
    input: &[f32],
    target: &[f32],
    [cin, cout, size]: [usize; 3],
) -> Vec<f32> {
    check_shapes(ops, weights);
    let layers = eval_layers(ops, weights);
    let hw = size * size;
    let batch = input.len() / (cin * hw);
    assert_eq!(target.len(), batch * cout * hw, "kernels: target size");
    let groups: Vec<Range<usize>> = (0..batch).step_by(EVAL_GROUP).map(|start| start..(start + EVAL_GROUP).min(batch)).collect();
    groups
        .into_par_iter()
        .flat_map_iter(|group| {
            // One chunk: the group's samples are already the unit of parallel work.
            let chunks = Chunks::single(group.len());
            let net = Net { chunks: &chunks, precision };
            let x = input_activation(&chunks, &input[group.start * cin * hw..group.end * cin * hw], cin, size);
            let out = layers.iter().fold(x, |x, layer| match layer {
                EvalOp::Conv { dims, weight, bias, relu } => net.conv(&x, *dims, weight, bias, *relu),
                EvalOp::Up { weight, bias } => net.up(&x, weight, bias),
                EvalOp::Pool => net.pool(&x),
            });
            let target = chunks.chunked(&target[group.start * cout * hw..group.end * cout * hw], cout, hw);
            let errors = per_sample_sse(&chunks, &out, &target);
            recycle(target);
            errors
        })
        .collect()
}

/// One training-mode forward and backward of L = sum_i w_i * SSE_i / (B * C * S * S).
pub fn train_step(
    ops: &[Op],
    weights: &Weights<'_>,
    precision: Precision,
    input: &[f32],
    target: &[f32],
    sample_weights: &[f32],
    [cin, cout, size]: [usize; 3],
) -> StepResult {
    check_shapes(ops, weights);
    let batch = sample_weights.len();
    assert_eq!(input.len(), batch * cin * size * size, "kernels: input size");
    let chunks = Chunks::new(batch);
    let net = Net { chunks: &chunks, precision };
    let mut batch_stats = Vec::new();
    let mut acts = forward(&net, ops, weights, input_activation(&chunks, input, cin, size), &mut batch_stats);
    let out = acts.pop().expect("an output");
    let target = chunks.chunked(target, cout, size * size);
    let sse = per_sample_sse(&chunks, &out, &target);
    let norm = (batch * cout * size * size) as f64;
    let loss = (sse.iter().zip(sample_weights).map(|(&e, &w)| e as f64 * w as f64).sum::<f64>() / norm) as f32;

    // dL/d(output) = 2 * w_i * (output - target) / norm.
    let mut grad = Activation::uninit(out.c, out.h, out.w, batch);
    let hw = size * size;
    let blocks = chunks.split_mut(&mut grad.data, out.per_sample());
    let pairs: Vec<_> = chunks.split(&out.data, out.per_sample()).into_iter().zip(chunks.split(&target, out.per_sample())).collect();
    blocks.into_par_iter().zip(pairs).zip(&chunks.ranges).for_each(|((g, (o, t)), range)| {
        // One image plane (a channel of a sample) at a time, at that sample's scale.
        let planes = g.chunks_mut(hw).zip(o.chunks(hw)).zip(t.chunks(hw));
        for (plane, ((gp, op), tp)) in planes.enumerate() {
            let scale = (2.0 * sample_weights[range.start + plane % range.len()] as f64 / norm) as f32;
            gp.iter_mut().zip(op).zip(tp).for_each(|((gv, ov), tv)| *gv = scale * (ov - tv));
        }
    });

    let mut grads: Vec<Vec<f32>> = Vec::with_capacity(weights.params.len());
    let mut p = weights.params.len();
    let mut norm_index = batch_stats.len();
    for (i, op) in ops.iter().enumerate().rev() {
        let x = &acts[i];
        let need_input = i > 0;
        let (param_grads, dx) = match *op {
            Op::Conv { cin, cout, k } => {
                p -= 2;
                let (dw, db, dx) = net.conv_backward(x, &grad, [cin, cout, k], &weights.params[p], need_input);
                (vec![dw, db], dx)
            }
            Op::Up { .. } => {
                p -= 2;
                let (dw, db, dx) = net.up_backward(x, &grad, &weights.params[p]);
                (vec![dw, db], Some(dx))
            }
            Op::BnRelu { .. } => {
                p -= 2;
                norm_index -= 1;
                let (dg, dbeta, dx) = net.bn_relu_backward(x, &grad, &weights.params[p], &weights.params[p + 1], &batch_stats[norm_index]);
                (vec![dg, dbeta], Some(dx))
            }
            Op::Pool => (vec![], Some(net.pool_backward(x, &grad))),
        };
        grads.extend(param_grads.into_iter().rev());
        match dx {
            Some(dx) => grad = dx,
            None => break,
        }
        acts.truncate(i + 1);
    }
    grads.reverse();
    recycle(target);
    StepResult { loss, grads, batch_stats }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let seed = &mut (seed + 1);
        (0..len).map(|_| lcg(seed)).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// One chunk of `samples` samples, and an activation of them.
    fn net(chunks: &Chunks, precision: Precision) -> Net<'_> {
        Net { chunks, precision }
    }

    fn activation(data: Vec<f32>, c: usize, [h, w]: [usize; 2]) -> Activation {
        Activation { c, h, w, data }
    }

    /// Columns read in place give the products of the written columns, in
    /// both places the kernels use them (right operand of a forward
    /// product, transposed in a weight gradient), at every image size of the
    /// network, for a convolution's window and the transposed convolution's
    /// backward taps: the same bits in bf16 (AMX), the exact sums within f32
    /// rounding in f32 (AVX-512, matmul/direct.rs, whose sums run in another
    /// order than `gemm`'s). Row counts leave passes short of rows; weight
    /// gradients run over one and several spans of positions (2,048 and
    /// 2,304) and over few enough to go through `gemm`.
    #[test]
    fn columns_read_in_place_give_the_products_of_written_columns() {
        let (bf16, f32) = (crate::matmul::bf16::available(), crate::matmul::f32_reads_in_place());
        if !bf16 || !f32 {
            println!("this CPU or system lacks AMX-BF16 ({bf16}) or AVX-512 ({f32}): that half of this test is skipped");
        }
        let up_back = |c: usize| {
            let rows = (0..4 * c).map(|r| (r % 4 * c + r / 4 % c, r % 4)).collect();
            Taps::new(vec![[0, 0], [0, -1], [-1, 0], [-1, -1]], rows, [8, 8], 4, true)
        };
        let cases = [
            (Taps::window(15, 3, [32, 32], 2, true), 2, [32, 32], 16),
            (Taps::window(15, 3, [32, 32], 2, true), 2, [32, 32], 14),
            (Taps::window(16, 3, [16, 16], 2, true), 2, [16, 16], 40),
            (Taps::window(16, 3, [16, 16], 9, true), 9, [16, 16], 13),
            (Taps::window(33, 3, [4, 4], 5, true), 5, [4, 4], 7),
            (Taps::window(8, 3, [8, 8], 4, true), 4, [8, 8], 64),
            (up_back(24), 4, [8, 8], 24),
            (up_back(5), 4, [8, 8], 9),
        ];
        for (case, (taps, samples, [h, w], m)) in cases.into_iter().enumerate() {
            let (rows, cols) = (taps.rows(), samples * h * w);
            let image = values(rows * cols, case as u64);
            let (weight, grad) = (values(m * rows, 10 + case as u64), values(m * cols, 20 + case as u64));
            let columns = taps.over(&image, samples);
            let mut written = vec![0f32; rows * cols];
            columns.write(&mut written);
            let forward = |precision: Precision, weight: &[f32], b: Operand<'_>| {
                let mut out = vec![f32::NAN; m * cols];
                matmul(precision, m, cols, rows, &mut out, Mat::rows(weight, rows).into(), b);
                out
            };
            let gradient = |precision: Precision, grad: &[f32], col: Operand<'_>| {
                let mut dw = vec![0f32; m * rows];
                add_weight_gradient(precision, m, rows, cols, grad, col, &mut dw);
                dw
            };
            let (dense, in_place) = (Operand::from(Mat::rows(&written, cols)), Operand::Columns(&columns, false));
            if bf16 && crate::matmul::bf16::pays(m, cols, rows) && crate::matmul::bf16::pays(m, rows, cols) {
                let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
                let (forward, gradient) = (|b| forward(Precision::Bf16, &weight, b), |b| gradient(Precision::Bf16, &grad, b));
                assert_eq!(bits(forward(in_place)), bits(forward(dense)), "case {case}: bf16 forward");
                assert_eq!(bits(gradient(in_place)), bits(gradient(dense)), "case {case}: bf16 weight gradient");
            }
            if f32 {
                // Sums of the terms' magnitudes bound the rounding.
                let (abs_weight, abs_grad, abs_written): (Vec<f32>, Vec<f32>, Vec<f32>) = (
                    weight.iter().map(|v| v.abs()).collect(),
                    grad.iter().map(|v| v.abs()).collect(),
                    written.iter().map(|v| v.abs()).collect(),
                );
                let abs_dense = Operand::from(Mat::rows(&abs_written, cols));
                let pairs = [
                    (
                        "forward",
                        forward(Precision::F32, &weight, in_place),
                        forward(Precision::F32, &weight, dense),
                        forward(Precision::F32, &abs_weight, abs_dense),
                    ),
                    (
                        "weight gradient",
                        gradient(Precision::F32, &grad, in_place),
                        gradient(Precision::F32, &grad, dense),
                        gradient(Precision::F32, &abs_grad, abs_dense),
                    ),
                ];
                for (what, got, want, magnitude) in pairs {
                    for (i, ((g, w), a)) in got.iter().zip(&want).zip(&magnitude).enumerate() {
                        assert!((g - w).abs() <= 1e-5 * (a + 1.0), "case {case}: f32 {what} at {i}: {g} against {w}");
                    }
                }
            }
        }
    }

    /// Every precision this machine runs.
    fn precisions() -> Vec<Precision> {
        if crate::matmul::bf16::available() {
            vec![Precision::F32, Precision::Bf16]
        } else {
            println!("this CPU or system has no AMX-BF16: the bf16 half of this test is skipped");
            vec![Precision::F32]
        }
    }

    /// |a - b| within `tol` of b's largest value, element-wise.
    fn assert_near(what: &str, a: &[f32], b: &[f32], tol: f32) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(a.len() == b.len() && worst <= tol * scale, "{what}: off by {worst} at a largest value of {scale}");
    }

    #[test]
    fn a_convolutions_gradients_are_its_adjoints() {
        // <conv(x, W), g> == <x, dX(g)> == <W, dW(x, g)>, 3 x 3 and 1 x 1,
        // an image size that columns are read in place at (4 x 4) and one
        // they are not (5 x 3).
        for (cin, cout, k, size) in [(24, 32, 3, [4, 4]), (3, 4, 3, [5, 3]), (2, 5, 1, [3, 3]), (16, 40, 3, [8, 8])] {
            let samples = 5;
            let chunks = Chunks::single(samples);
            let cols = samples * size[0] * size[1];
            let x = values(cin * cols, 1);
            let g = activation(values(cout * cols, 2), cout, size);
            let weight = values(cout * cin * k * k, 3);
            let exact = {
                let net = net(&chunks, Precision::F32);
                let y = net.conv(&activation(x.clone(), cin, size), [cin, cout, k], &weight, &vec![0.0; cout], false);
                dot(&y.data, &g.data)
            };
            for precision in precisions() {
                let net = net(&chunks, precision);
                let (dw, db, dx) = net.conv_backward(&activation(x.clone(), cin, size), &g, [cin, cout, k], &weight, true);
                let tol = if precision == Precision::F32 { 1e-4 } else { 2e-2 };
                let scale = dot(&x, &x).sqrt() * dot(&g.data, &g.data).sqrt();
                for (what, value) in [("input", dot(&x, &dx.expect("asked for").data)), ("weight", dot(&weight, &dw))] {
                    assert!(
                        (value - exact).abs() <= tol * scale,
                        "{cin} -> {cout}, k {k}, {precision:?}: {what} gradient gives {value}, not {exact}"
                    );
                }
                let sums: Vec<f32> = g.data.chunks_exact(cols).map(|row| row.iter().sum()).collect();
                assert_near("bias gradient", &db, &sums, 1e-5);
            }
        }
    }

    /// ConvTranspose2d(k 3, stride 2, padding 1, output padding 1) by its
    /// definition: input (i, j) through tap (ki, kj) adds to output (2i - 1
    /// + ki, 2j - 1 + kj).
    fn up_by_definition(x: &[f32], weight: &[f32], bias: &[f32], c: usize, samples: usize, [h, w]: [usize; 2]) -> Vec<f32> {
        let (cols, out_cols) = (samples * h * w, samples * 4 * h * w);
        let mut y: Vec<f32> = (0..c * out_cols).map(|i| bias[i / out_cols]).collect();
        for (ci, co, s, i, j, ki, kj) in (0..c * c * samples * h * w * 9).map(|n| {
            let (rest, tap) = (n / 9, n % 9);
            let (rest, j) = (rest / w, rest % w);
            let (rest, i) = (rest / h, rest % h);
            let (rest, s) = (rest / samples, rest % samples);
            (rest / c, rest % c, s, i, j, tap / 3, tap % 3)
        }) {
            let (oy, ox) = ((2 * i + ki).checked_sub(1), (2 * j + kj).checked_sub(1));
            if let (Some(oy), Some(ox)) = (oy.filter(|&v| v < 2 * h), ox.filter(|&v| v < 2 * w)) {
                let v = x[ci * cols + (s * h + i) * w + j] * weight[(ci * c + co) * 9 + ki * 3 + kj];
                y[co * out_cols + (s * 2 * h + oy) * 2 * w + ox] += v;
            }
        }
        y
    }

    #[test]
    fn transposed_convolutions_follow_the_definition_and_their_gradients_are_adjoints() {
        // The network's sizes; 32 channels at 8 x 8 also runs the products
        // of two and four taps (and the backward one) on AMX with bf16.
        for (c, size) in [(3, [2, 3]), (32, [8, 8]), (8, [4, 4])] {
            let samples = 3;
            let chunks = Chunks::single(samples);
            let cols = samples * size[0] * size[1];
            let (x, weight, bias) = (values(c * cols, 4), values(c * c * 9, 5), values(c, 6));
            let out_size = [2 * size[0], 2 * size[1]];
            let g = activation(values(c * 4 * cols, 7), c, out_size);
            let want = up_by_definition(&x, &weight, &bias, c, samples, size);
            let zero = up_by_definition(&x, &weight, &vec![0.0; c], c, samples, size);
            for precision in precisions() {
                let net = net(&chunks, precision);
                let tol = if precision == Precision::F32 { 1e-5 } else { 2e-2 };
                let y = net.up(&activation(x.clone(), c, size), &weight, &bias);
                assert_near(&format!("{c} channels, {size:?}, {precision:?}: output"), &y.data, &want, tol);
                let (dw, db, dx) = net.up_backward(&activation(x.clone(), c, size), &g, &weight);
                let exact = dot(&zero, &g.data);
                let scale = dot(&x, &x).sqrt() * dot(&g.data, &g.data).sqrt();
                for (what, value) in [("input", dot(&x, &dx.data)), ("weight", dot(&weight, &dw))] {
                    assert!(
                        (value - exact).abs() <= 10.0 * tol as f64 * scale,
                        "{c} channels, {size:?}, {precision:?}: {what} gradient gives {value}, not {exact}"
                    );
                }
                let sums: Vec<f32> = g.data.chunks_exact(4 * cols).map(|row| row.iter().sum()).collect();
                assert_near("bias gradient", &db, &sums, 1e-5);
            }
        }
    }

    #[test]
    fn chunked_layout_round_trips_and_covers_the_batch() {
        for batch in [1, 2, 5, 37, 256] {
            let chunks = Chunks::new(batch);
            assert_eq!(chunks.batch(), batch);
            assert!(chunks.ranges.iter().all(|r| r.len() <= MAX_CHUNK_SAMPLES), "batch {batch}: {:?}", chunks.ranges);
            let (c, hw) = (3, 4);
            let samples: Vec<f32> = (0..batch * c * hw).map(|v| v as f32).collect();
            let chunked = chunks.chunked(&samples, c, hw);
            // Sample s, channel ch, pixel q sits at its chunk's row ch.
            for (block, range) in chunks.split(&chunked, c * hw).into_iter().zip(&chunks.ranges) {
                let cols = range.len() * hw;
                for (n, s) in range.clone().enumerate() {
                    for ch in 0..c {
                        assert_eq!(block[ch * cols + n * hw..][..hw], samples[(s * c + ch) * hw..][..hw]);
                    }
                }
            }
        }
    }

    #[test]
    fn pooling_takes_the_first_maximum_and_routes_its_gradient_there() {
        // Values from a few levels, so that windows hold ties; odd sizes
        // leave a row or column outside every window (gradient 0 there).
        for (h, w, batch) in [(4, 4, 3), (5, 3, 2), (2, 6, 9), (32, 32, 2)] {
            let c = 2;
            let chunks = Chunks::new(batch);
            let net = Net { chunks: &chunks, precision: Precision::F32 };
            let seed = &mut 5;
            let samples: Vec<f32> = (0..batch * c * h * w).map(|_| (lcg(seed) * 6.0).round()).collect();
            let grads: Vec<f32> = (0..batch * c * (h / 2) * (w / 2)).map(|_| lcg(seed)).collect();
            let x = Activation { c, h, w, data: chunks.chunked(&samples, c, h * w) };
            let dy = Activation { c, h: h / 2, w: w / 2, data: chunks.chunked(&grads, c, (h / 2) * (w / 2)) };
            let (y, dx) = (net.pool(&x), net.pool_backward(&x, &dy));
            let (mut want_y, mut want_dx) = (vec![0f32; grads.len()], vec![0f32; samples.len()]);
            for plane in 0..batch * c {
                for i in 0..h / 2 {
                    for j in 0..w / 2 {
                        let at = |di: usize, dj: usize| plane * h * w + (2 * i + di) * w + 2 * j + dj;
                        let best =
                            [at(0, 1), at(1, 0), at(1, 1)].into_iter().fold(at(0, 0), |b, k| if samples[k] > samples[b] { k } else { b });
                        let out = plane * (h / 2) * (w / 2) + i * (w / 2) + j;
                        want_y[out] = samples[best];
                        want_dx[best] += grads[out];
                    }
                }
            }
            assert_eq!(y.data, chunks.chunked(&want_y, c, (h / 2) * (w / 2)), "{h} x {w}");
            assert_eq!(dx.data, chunks.chunked(&want_dx, c, h * w), "{h} x {w}");
        }
    }

    #[test]
    fn lane_sums_match_f64_sums() {
        // Lengths around the lane and block sizes, so the tails are summed too.
        for len in [0, 1, 15, 16, 17, 1023, 1024, 1025, 5000] {
            let seed = &mut (len as u64 + 3);
            let (a, b): (Vec<f32>, Vec<f32>) = (0..len).map(|_| (lcg(seed) + 1.0, lcg(seed))).unzip();
            let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            let lanes = lane_sum(&a, &b, |x, y| x * y);
            assert!((lanes - exact).abs() <= 1e-6 * (1.0 + exact.abs()), "{len} values: {lanes} against {exact}");
        }
    }

    #[test]
    fn layers_follow_the_paper_table() {
        let ops = layers(15, 15, 32);
        assert_eq!(ops.len(), 4 + 3 * 5 + 3 * 5 + 1);
        assert_eq!(ops[0], Op::Conv { cin: 15, cout: 32, k: 3 });
        assert_eq!(ops[19], Op::Up { c: 256 });
        assert_eq!(*ops.last().unwrap(), Op::Conv { cin: 32, cout: 15, k: 1 });
    }
}
