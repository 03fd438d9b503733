//! The matrix products of the CPU kernels: f32 through `gemm`, or, as an
//! opt-in (`precision = "bf16"`), with operands rounded to bf16 and every
//! sum in f32 on AMX ([`bf16`]). A convolution's column matrix is read in
//! place from its image ([`Columns`]) where the CPU allows: the bf16
//! products pack it into tile layout straight from the image, and f32
//! products with it run on AVX-512 ([`direct`]), where im2col would first
//! write it out (9 times the image for a 3 x 3 window) for `gemm` to read
//! back.

#[cfg(target_arch = "x86_64")]
mod direct;

use crate::columns::Columns;
use crate::config::Precision;
use gemm::{gemm, Parallelism};

/// A matrix operand: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: 1, cs: cols }
    }

    /// This matrix transposed (no copy).
    fn t(self) -> Mat<'a> {
        Mat { data: self.data, rs: self.cs, cs: self.rs }
    }
}

/// A run of an operand's values that lie side by side, as the packer reads
/// them: value c at `base + c`, and, per 16 values from a multiple of 16,
/// which of them are read (`masks`; when null, `all` for every run).
#[derive(Clone, Copy)]
pub(crate) struct Line {
    pub(crate) base: *const f32,
    pub(crate) masks: *const u16,
    pub(crate) all: u16,
}

/// A matrix operand of a product: in memory, or a [`Columns`] read in
/// place (transposed when the flag says so).
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    Dense(Mat<'a>),
    Columns(&'a Columns<'a>, bool),
}

impl<'a> From<Mat<'a>> for Operand<'a> {
    fn from(mat: Mat<'a>) -> Operand<'a> {
        Operand::Dense(mat)
    }
}

impl<'a> Operand<'a> {
    /// This operand transposed (no copy).
    pub fn t(self) -> Operand<'a> {
        match self {
            Operand::Dense(mat) => Operand::Dense(mat.t()),
            Operand::Columns(columns, transposed) => Operand::Columns(columns, !transposed),
        }
    }

    /// Whether the operand has at least `rows` x `cols` elements.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        match *self {
            Operand::Dense(x) => (rows.max(1) - 1) * x.rs + (cols.max(1) - 1) * x.cs < x.data.len(),
            Operand::Columns(c, transposed) => {
                let [r, n] = c.shape();
                assert!(c.in_place(), "matmul: columns the packer cannot read in place");
                if transposed {
                    rows <= n && cols <= r
                } else {
                    rows <= r && cols <= n
                }
            }
        }
    }

    /// Whether the values of one column (row r, r + 1, ...) lie side by
    /// side, rather than those of one row.
    fn columns_contiguous(&self) -> bool {
        match *self {
            Operand::Dense(x) => {
                assert!(x.rs == 1 || x.cs == 1, "bf16 matmul: an operand with neither stride 1");
                x.rs == 1
            }
            Operand::Columns(_, transposed) => transposed,
        }
    }

    /// The run of values along the side-by-side direction at index `r` of
    /// the other one.
    #[inline]
    fn line(&self, r: usize) -> Line {
        match *self {
            Operand::Dense(x) => {
                let stride = if x.rs == 1 { x.cs } else { x.rs };
                Line { base: x.data.as_ptr().wrapping_add(r * stride), masks: std::ptr::null(), all: u16::MAX }
            }
            Operand::Columns(c, _) => c.line(r),
        }
    }
}

/// Whether an m x k by k x n product at `precision` reads a [`Columns`]
/// operand in place: as a bf16 product on AMX, as an f32 one on AVX-512.
pub fn reads_in_place(precision: Precision, m: usize, n: usize, k: usize) -> bool {
    if precision == Precision::Bf16 && bf16::pays(m, n, k) {
        bf16::available()
    } else {
        f32_reads_in_place()
    }
}

/// Whether f32 products read [`Columns`] in place on this CPU.
pub fn f32_reads_in_place() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        direct::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// dst (row-major m x n) = a (m x k) * b (k x n).
pub fn matmul(precision: Precision, m: usize, n: usize, k: usize, dst: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
    matmul_to(precision, m, n, k, dst, [n, 1], a, b);
}

/// `matmul` into a destination with element (r, c) at `dst[r * rs + c * cs]`
/// (`[rs, cs]`: `[n, 1]` row-major or `[1, m]` column-major). bf16 products
/// run only where they beat f32 ones ([`bf16::pays`]).
///
/// # Panics
/// With a [`Columns`] as the left operand.
#[allow(clippy::too_many_arguments)]
pub fn matmul_to(precision: Precision, m: usize, n: usize, k: usize, dst: &mut [f32], strides: [usize; 2], a: Operand<'_>, b: Operand<'_>) {
    let precision = if bf16::pays(m, n, k) { precision } else { Precision::F32 };
    product(precision, m, n, k, dst, strides, a, b)
}

/// [`matmul_to`] at `precision`, wherever it pays or not.
#[allow(clippy::too_many_arguments)]
fn product(
    precision: Precision,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    [dst_rs, dst_cs]: [usize; 2],
    a: Operand<'_>,
    b: Operand<'_>,
) {
    assert!(([dst_rs, dst_cs] == [n, 1] || [dst_rs, dst_cs] == [1, m]) && dst.len() >= m * n, "matmul: destination too small or not dense");
    assert!(k == 0 || (a.covers(m, k) && b.covers(k, n)), "matmul: operand too small");
    if k == 0 || m == 0 || n == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    match precision {
        Precision::F32 => {
            let (a, b) = match (a, b) {
                (Operand::Dense(a), Operand::Dense(b)) => (a, b),
                (Operand::Dense(a), Operand::Columns(b, transposed)) => {
                    return columns_f32(m, n, k, dst, [dst_rs, dst_cs], a, b, transposed)
                }
                _ => panic!("matmul: an f32 product with columns as its left operand"),
            };
            // SAFETY: the asserts above keep every index gemm computes from the
            // strides inside the three slices; dst is exclusively borrowed.
            unsafe {
                gemm(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr(),
                    dst_cs as isize,
                    dst_rs as isize,
                    false,
                    a.data.as_ptr(),
                    a.cs as isize,
                    a.rs as isize,
                    b.data.as_ptr(),
                    b.cs as isize,
                    b.rs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        }
        // A column-major destination is the transposed product, row-major.
        Precision::Bf16 if dst_cs == 1 => bf16::matmul(m, n, k, dst, a, b),
        Precision::Bf16 => bf16::matmul(n, m, k, dst, b.t(), a.t()),
    }
}

/// An f32 product whose right operand is a [`Columns`]: read in place
/// ([`direct`]) by the rows of a (a convolution, row-major dst), or, when
/// `transposed`, with a's rows side by side (a weight gradient) where that
/// is the faster way; otherwise written out for `gemm`.
#[allow(clippy::too_many_arguments)]
fn columns_f32(m: usize, n: usize, k: usize, dst: &mut [f32], strides: [usize; 2], a: Mat<'_>, b: &Columns<'_>, transposed: bool) {
    #[cfg(target_arch = "x86_64")]
    if f32_reads_in_place() && b.in_place() {
        // SAFETY: `product` checked a and b against m, n, k and dst's size,
        // and Columns read in place have whole runs of 16 (`in_place`).
        match (transposed, strides) {
            (false, [rs, 1]) if rs == n => return unsafe { direct::weights_by_columns(m, n, k, dst, a, b) },
            (true, strides) if a.cs == 1 && direct::lines_pay(k) => return unsafe { direct::rows_by_lines(m, n, k, dst, strides, a, b) },
            _ => {}
        }
    }
    WRITTEN.with_borrow_mut(|written| {
        let [rows, cols] = b.shape();
        written.resize(written.len().max(rows * cols), 0.0);
        let written = &mut written[..rows * cols];
        b.write(written);
        let b = if transposed { Mat::transposed(written, cols) } else { Mat::rows(written, cols) };
        product(Precision::F32, m, n, k, dst, strides, a.into(), b.into());
    });
}

thread_local! {
    /// Columns written out for an f32 product that does not read them in
    /// place, kept per thread (a fresh buffer per product would be mapped
    /// anew each time).
    static WRITTEN: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Products of bf16 operands with f32 sums on AMX (Intel's tile unit,
/// Sapphire Rapids and later): `tdpbf16ps` multiplies a 16 x 32 tile of bf16
/// by a 32 x 16 one and adds them into a 16 x 16 tile of f32, 8,192
/// multiply-adds per instruction. Operands are rounded to bf16 (nearest,
/// ties to even) as they are packed into tile layout; every sum is f32.
///
/// AVX-512 BF16's `vdpbf16ps`, the other way to these products, was
/// measured here at half the multiply-adds per second of f32 FMAs (one
/// instruction per two cycles against two per cycle), so it is not used
/// (docs/decisions/bf16-products.md).
pub mod bf16 {
    use super::Operand;

    /// Whether this CPU and system run the bf16 products: AMX-BF16, and
    /// the kernel's leave to use the tile registers (asked for once).
    pub fn available() -> bool {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            amx::available()
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    }

    /// Whether bf16 products beat f32 ones for an m x k by k x n product on
    /// AMX. Not with a short inner dimension (the product is bound by
    /// writing dst, at 32 and below), nor with one side at most 16 and a
    /// long inner dimension (a weight gradient at 32 x 32: bound by packing
    /// the long operand): measured per product of a ped2-fast training step
    /// (docs/decisions/bf16-products.md).
    pub fn pays(m: usize, n: usize, k: usize) -> bool {
        k >= 64 && (m.min(n) >= 32 || k <= 2048)
    }

    /// dst (row-major m x n) = a (m x k) * b (k x n). Not public: it
    /// trusts its caller (`product`) to have checked every index against
    /// the slices and k, m, n > 0.
    ///
    /// # Panics
    /// When [`available`] is false (the stage refuses the option there).
    pub(super) fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
        assert!(available(), "bf16 products on a CPU or system without AMX-BF16");
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        // SAFETY: the CPU has the features and the tiles are enabled
        // (asserted); indices as documented.
        unsafe {
            amx::matmul(m, n, k, dst, a, b)
        }
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    mod amx {
        use super::super::{Line, Operand};
        use std::arch::asm;
        use std::arch::x86_64::*;
        use std::cell::RefCell;
        use std::sync::OnceLock;

        /// Rows of a tile, and pairs of bf16 values in a row of an operand tile.
        const TILE: usize = 16;
        /// Rows (of dst and a) and columns (of dst and b) of one kernel call: 2 x 2 tiles.
        const BLOCK: usize = 2 * TILE;
        /// Bytes of b packed per pass, at most (unless one panel is more).
        const PANELS_BYTES: usize = 256 << 10;
        /// Bytes of a packed per step of the inner dimension, at most
        /// (unless one tile row of it is more).
        const LEFT_BYTES: usize = 512 << 10;

        pub(super) fn available() -> bool {
            static AVAILABLE: OnceLock<bool> = OnceLock::new();
            *AVAILABLE.get_or_init(|| {
                // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
                // CPUID leaf 7 exists on every CPU with AVX-512.
                let edx = if is_x86_feature_detected!("avx512f") { __cpuid_count(7, 0).edx } else { 0 };
                let amx = edx & (1 << 22) != 0 && edx & (1 << 24) != 0;
                amx && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512bf16") && tiles_permitted()
            })
        }

        /// Asks Linux for the tile registers' state (arch_prctl
        /// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), once per process.
        fn tiles_permitted() -> bool {
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: a plain system call with integer arguments.
            unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
        }

        thread_local! {
            /// The packed left operand and a span of packed right panels, kept per
            /// thread: fresh megabyte buffers per product would be mapped
            /// anew each time.
            static PACKED: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
        }

        /// The tile configuration: palette 1, all 8 tiles 16 rows of 64 bytes.
        #[repr(C, align(64))]
        struct TileConfig([u8; 64]);

        impl TileConfig {
            fn new() -> TileConfig {
                let mut bytes = [0u8; 64];
                bytes[0] = 1;
                for t in 0..8 {
                    bytes[16 + 2 * t] = 64;
                    bytes[48 + t] = TILE as u8;
                }
                TileConfig(bytes)
            }
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
        pub(super) unsafe fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
            let blocks = m.div_ceil(BLOCK);
            // The inner dimension in steps whose packed a (all m rows) fits in
            // L2 beside b's panels: a weight gradient's inner dimension is
            // every position of a chunk, and its packed a, written out and
            // read back from memory, cost more than the products.
            let step = (LEFT_BYTES / (blocks * BLOCK * 4) / TILE).max(1) * TILE;
            let config = TileConfig::new();
            asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
            PACKED.with_borrow_mut(|(left, right)| {
                for (s, first) in (0..k.div_ceil(2)).step_by(step).enumerate() {
                    let k0 = 2 * first;
                    let depth = (k - k0).min(2 * step);
                    // Whole tile rows: pairs past the step's end are packed as zeros.
                    let pairs = depth.div_ceil(2).next_multiple_of(TILE);
                    // Sums of earlier steps are in dst already.
                    let add = s > 0;
                    // a in blocks of 32 rows: row r of a block holds its pairs at r * pairs.
                    grow(left, blocks * BLOCK * pairs);
                    pack(a, [0, k0], m, blocks * BLOCK, depth, pairs, left.as_mut_ptr(), [pairs, 1]);
                    // Columns of b in spans of whole 32-column panels that fit
                    // in L2: a pass reads each row of b along a whole span, not
                    // 32 values from each of many rows (latency-bound).
                    let span = (PANELS_BYTES / (BLOCK * pairs * 4)).max(1) * BLOCK;
                    grow(right, span * pairs);
                    for js in (0..n).step_by(span) {
                        let columns = span.min(n - js);
                        pack(b.t(), [js, k0], columns, columns.next_multiple_of(BLOCK), depth, pairs, right.as_mut_ptr(), [1, BLOCK]);
                        for (q, j) in (js..js + columns).step_by(BLOCK).enumerate() {
                            let width = BLOCK.min(n - j);
                            let b_panel = right[q * BLOCK * pairs..].as_ptr();
                            for (t, i) in (0..m).step_by(BLOCK).enumerate() {
                                let rows = BLOCK.min(m - i);
                                let block = Block { pairs, a: left[t * BLOCK * pairs..].as_ptr(), b: b_panel };
                                block.product(dst[i * n + j..].as_mut_ptr(), n, rows, width, add);
                            }
                        }
                    }
                }
            });
            asm!("tilerelease", options(nostack, nomem));
        }

        fn grow(buffer: &mut Vec<u32>, len: usize) {
            if buffer.len() < len {
                buffer.resize(len, 0);
            }
        }

        /// A block of a (32 rows) and a panel of b (32 columns), packed, over `pairs` pairs.
        struct Block {
            pairs: usize,
            a: *const u32,
            b: *const u32,
        }

        impl Block {
            /// The product's first `rows` x `width` values, at `dst` with rows
            /// `ld` apart, stored or added. Whole tiles written over go
            /// straight from the tile registers; others through a buffer.
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
            unsafe fn product(&self, dst: *mut f32, ld: usize, rows: usize, width: usize, add: bool) {
                let (r, c) = (rows.div_ceil(TILE), width.div_ceil(TILE));
                if !add && rows == r * TILE && width == c * TILE {
                    return self.tiles(r, c, dst, ld);
                }
                let mut sums = [0f32; BLOCK * BLOCK];
                self.tiles(r, c, sums.as_mut_ptr(), BLOCK);
                for (row, values) in sums.chunks_exact(BLOCK).take(rows).enumerate() {
                    let at = dst.add(row * ld);
                    for h in (0..width).step_by(TILE) {
                        let mask = lane_mask(width - h);
                        let mut value = _mm512_loadu_ps(values[h..].as_ptr());
                        if add {
                            value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, at.add(h)));
                        }
                        _mm512_mask_storeu_ps(at.add(h), mask, value);
                    }
                }
            }

            /// The first `r` x `c` tiles of the product, to `out` (rows `ld` apart).
            #[target_feature(enable = "avx512f")]
            unsafe fn tiles(&self, r: usize, c: usize, out: *mut f32, ld: usize) {
                match (r, c) {
                    (2, 2) => self.tiles_of::<2, 2>(out, ld),
                    (2, _) => self.tiles_of::<2, 1>(out, ld),
                    (_, 2) => self.tiles_of::<1, 2>(out, ld),
                    _ => self.tiles_of::<1, 1>(out, ld),
                }
            }

            /// R x C tiles (R, C at most 2). Tile registers: sums 0-3, a 4-5, b 6-7.
            #[target_feature(enable = "avx512f")]
            unsafe fn tiles_of<const R: usize, const C: usize>(&self, out: *mut f32, ld: usize) {
                let (a_stride, b_stride, out_stride) = (self.pairs * 4, BLOCK * 4, ld * 4);
                asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
                for p in (0..self.pairs).step_by(TILE) {
                    let (a0, b0) = (self.a.add(p), self.b.add(p * BLOCK));
                    asm!("tileloadd tmm4, [{} + {}*1]", in(reg) a0, in(reg) a_stride, options(nostack, readonly));
                    asm!("tileloadd tmm6, [{} + {}*1]", in(reg) b0, in(reg) b_stride, options(nostack, readonly));
                    if R == 2 {
                        asm!("tileloadd tmm5, [{} + {}*1]", in(reg) a0.add(TILE * self.pairs), in(reg) a_stride, options(nostack, readonly));
                    }
                    if C == 2 {
                        asm!("tileloadd tmm7, [{} + {}*1]", in(reg) b0.add(TILE), in(reg) b_stride, options(nostack, readonly));
                    }
                    asm!("tdpbf16ps tmm0, tmm4, tmm6", options(nostack, nomem));
                    if C == 2 {
                        asm!("tdpbf16ps tmm1, tmm4, tmm7", options(nostack, nomem));
                    }
                    if R == 2 {
                        asm!("tdpbf16ps tmm2, tmm5, tmm6", options(nostack, nomem));
                        if C == 2 {
                            asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
                        }
                    }
                }
                let at = |r: usize, c: usize| out.add(r * TILE * ld + c * TILE);
                asm!("tilestored [{} + {}*1], tmm0", in(reg) at(0, 0), in(reg) out_stride, options(nostack));
                if C == 2 {
                    asm!("tilestored [{} + {}*1], tmm1", in(reg) at(0, 1), in(reg) out_stride, options(nostack));
                }
                if R == 2 {
                    asm!("tilestored [{} + {}*1], tmm2", in(reg) at(1, 0), in(reg) out_stride, options(nostack));
                    if C == 2 {
                        asm!("tilestored [{} + {}*1], tmm3", in(reg) at(1, 1), in(reg) out_stride, options(nostack));
                    }
                }
            }
        }

        /// Packs lanes `0..span` (a multiple of 32; `lanes` of them real, the
        /// rest zeros) of `x` from lane `first[0]` and element `first[1]` on,
        /// where element (lane, i) is x's (first[0] + lane, first[1] + i), in
        /// blocks of 32 lanes: lane l's elements 2p and 2p + 1, as bf16 (low
        /// half first; zeros past k), go to `out[(l / 32) * 32 * pairs + (l %
        /// 32) * lane_stride + p * pair_stride]` for every p below `pairs` (a
        /// multiple of 16).
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
        unsafe fn pack(
            x: Operand<'_>,
            [lane0, i0]: [usize; 2],
            lanes: usize,
            span: usize,
            k: usize,
            pairs: usize,
            out: *mut u32,
            [lane_stride, pair_stride]: [usize; 2],
        ) {
            let at = |lane: usize, p: usize| out.add(lane / BLOCK * BLOCK * pairs + lane % BLOCK * lane_stride + p * pair_stride);
            // Sixteen values, one per lane or per pair, at `at` and `stride` apart.
            let store = |at: *mut u32, stride: usize, values: __m512i| {
                if stride == 1 {
                    _mm512_storeu_si512(at.cast(), values);
                } else {
                    let offsets = _mm512_mullo_epi32(
                        _mm512_set1_epi32(stride as i32),
                        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                    );
                    _mm512_i32scatter_epi32(at.cast(), offsets, values, 4);
                }
            };
            // The 16 values of `line` from `c` on, those outside `wanted` as zeros.
            let load = |line: &Line, c: usize, wanted: __mmask16| {
                if wanted == 0 {
                    return _mm512_setzero_ps();
                }
                let readable = if line.masks.is_null() { line.all } else { *line.masks.add(c / TILE) };
                _mm512_maskz_loadu_ps(wanted & readable, line.base.wrapping_add(c))
            };
            if x.columns_contiguous() {
                // Lanes lie side by side: elements 2p and 2p + 1 of 16 lanes,
                // rounded together and interleaved.
                let interleave = _mm512_set_epi16(
                    31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0,
                );
                for p in 0..pairs {
                    let i = 2 * p;
                    let (even, odd) = (x.line(i0 + i), x.line(i0 + i + 1));
                    for g in (0..span).step_by(TILE) {
                        let mask = if i < k { lane_mask(lanes.saturating_sub(g)) } else { 0 };
                        let low = load(&even, lane0 + g, mask);
                        let high = load(&odd, lane0 + g, if i + 1 < k { mask } else { 0 });
                        let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
                        store(at(g, p), lane_stride, _mm512_permutexvar_epi16(interleave, rounded));
                    }
                }
            } else {
                // Each lane's elements lie side by side: 32 of them are 16
                // pairs in order.
                for lane in 0..span {
                    let line = x.line(lane0 + lane);
                    for p in (0..pairs).step_by(TILE) {
                        let left = if lane < lanes { k.saturating_sub(2 * p) } else { 0 };
                        let low = load(&line, i0 + 2 * p, lane_mask(left));
                        let high = load(&line, i0 + 2 * p + TILE, lane_mask(left.saturating_sub(TILE)));
                        let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
                        store(at(lane, p), pair_stride, rounded);
                    }
                }
            }
        }

        /// The first `n` of 16 lanes (all for n >= 16).
        fn lane_mask(n: usize) -> __mmask16 {
            if n >= 16 {
                0xffff
            } else {
                (1u16 << n) - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x` rounded to bf16 (nearest, ties to even), back as f32.
    fn bf16_rounded(x: f32) -> f32 {
        let bits = x.to_bits();
        f32::from_bits((bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff_0000)
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::init::Rng::new(seed);
        (0..len).map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// Every layout the kernels use (each operand row-major or transposed,
    /// the destination row- or column-major, every old value overwritten), at
    /// sizes that leave partial tiles and cross every block boundary: the
    /// bf16 product equals the exact product of the bf16-rounded operands up
    /// to f32 summation, and the f32 product the exact one of the operands.
    #[test]
    fn products_match_exact_sums_in_every_layout() {
        if !bf16::available() {
            println!("skipped the bf16 half of this test: this CPU or system has no AMX-BF16");
        }
        let sizes = [(1, 1, 1), (3, 5, 7), (8, 16, 2), (9, 17, 33), (13, 50, 257), (130, 970, 300), (20, 1000, 40)];
        for (case, &(m, n, k)) in sizes.iter().enumerate() {
            let (a, b, before) = (values(m * k, 2 * case as u64), values(k * n, 2 * case as u64 + 1), values(m * n, 99));
            for [a_t, b_t, dst_t] in (0..8).map(|bits| [0, 1, 2].map(|i| bits >> i & 1 == 1)) {
                // Stored so that element (r, c) of the operand is a[r][c] as a row-major m x k.
                let stored = |x: &[f32], rows: usize, cols: usize, t: bool| -> Vec<f32> {
                    if t {
                        (0..cols * rows).map(|i| x[(i % rows) * cols + i / rows]).collect()
                    } else {
                        x.to_vec()
                    }
                };
                let (a_data, b_data) = (stored(&a, m, k, a_t), stored(&b, k, n, b_t));
                let a_mat = if a_t { Mat::transposed(&a_data, m) } else { Mat::rows(&a_data, k) };
                let b_mat = if b_t { Mat::transposed(&b_data, k) } else { Mat::rows(&b_data, n) };
                let strides = if dst_t { [1, m] } else { [n, 1] };
                let at = |r: usize, c: usize| r * strides[0] + c * strides[1];
                let precisions = if bf16::available() { vec![Precision::F32, Precision::Bf16] } else { vec![Precision::F32] };
                for precision in precisions {
                    let round = |x: f32| if precision == Precision::Bf16 { bf16_rounded(x) } else { x };
                    let mut dst = before.clone();
                    product(precision, m, n, k, &mut dst, strides, a_mat.into(), b_mat.into());
                    for r in 0..m {
                        for c in 0..n {
                            let terms = (0..k).map(|i| round(a[r * k + i]) as f64 * round(b[i * n + c]) as f64);
                            let magnitude: f64 = terms.clone().map(f64::abs).sum();
                            let want = terms.sum::<f64>();
                            let got = dst[at(r, c)] as f64;
                            assert!(
                                (got - want).abs() <= 1e-5 * (magnitude + 1.0),
                                "{precision:?} {m}x{n}x{k} (a_t {a_t}, b_t {b_t}, dst_t {dst_t}) at ({r}, {c}): {got} against {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
