//! Mutation fuzzing of the readers of outside bytes, on stable Rust.
//!
//! A reader is given real or code-made sample files, each mutated many
//! times (bit flips, byte substitutions, truncations, spliced chunks,
//! header words and decimal numbers replaced by extreme values) by a seeded
//! [`SplitMix64`], so a failing case is reproducible from its number. Each
//! case runs under `catch_unwind`; a panic fails the test, and so does an
//! allocation larger than the case's bound when the test binary installs
//! [`TrackingAllocator`]: a reader must size its buffers by the bytes it
//! has, not by what a header claims.
//!
//! Coverage-guided fuzzers (cargo-fuzz) need nightly Rust; this one is blind
//! to coverage, so it leans on samples that reach every branch of a format
//! and on mutations that aim at the fields a parser trusts (lengths, counts,
//! dimensions). `VIGIL_FUZZ_CASES` sets the cases per sample (default
//! [`DEFAULT_CASES`]) for a longer local run: `VIGIL_FUZZ_CASES=50000 cargo
//! test --release fuzz`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use vigil_stage_api::rng::SplitMix64;

/// Cases per sample in a test run: a few seconds per reader in CI.
pub const DEFAULT_CASES: usize = 1500;

/// A sample file to mutate: a name for reports and its bytes.
pub struct Sample {
    /// Shown in failure reports, e.g. `ped2.mat` or `3 ranges, compressed`.
    pub name: String,
    /// The unmutated file.
    pub bytes: Vec<u8>,
}

impl Sample {
    /// A sample made from `bytes`.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Sample {
        Sample { name: name.into(), bytes: bytes.into() }
    }
}

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// (target, sample, case) of the case this thread runs, for the line
    /// printed when an allocation is refused (the process aborts after it).
    static CASE: Cell<(&'static str, usize, usize)> = const { Cell::new(("", 0, 0)) };
}

static TRACKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The system allocator, recording the largest single allocation that the
/// current thread asks for. Install it in a test binary with
/// `#[global_allocator] static A: TrackingAllocator = TrackingAllocator;`;
/// without it, the fuzzer checks panics only. Allocations made on other
/// threads (rayon workers) are not seen.
pub struct TrackingAllocator;

impl TrackingAllocator {
    fn note(size: usize) -> bool {
        TRACKING.store(true, std::sync::atomic::Ordering::Relaxed);
        // `try_with`: the thread's locals may be gone while it exits.
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        // A request far past the case's bound is refused rather than served,
        // so that a claim of terabytes fails the case instead of the machine.
        let allowed = LIMIT.try_with(|limit| size <= limit.get().saturating_mul(16)).unwrap_or(true);
        if !allowed {
            Self::say_refused(size);
        }
        allowed
    }

    /// Names the case on stderr without allocating: a caller that cannot
    /// handle the refusal aborts the process next.
    fn say_refused(size: usize) {
        use std::io::Write;
        let (target, sample, case) = CASE.try_with(Cell::get).unwrap_or(("", 0, 0));
        let mut line = [0u8; 256];
        let mut cursor = std::io::Cursor::new(&mut line[..]);
        let _ = writeln!(cursor, "fuzz {target}: sample {sample}, case {case}: refused an allocation of {size} bytes");
        let end = cursor.position() as usize;
        let _ = std::io::stderr().write_all(&line[..end]);
    }
}

// SAFETY: every call is forwarded to `System` unchanged, or refused with a
// null pointer, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::note(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::note(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::note(new_size) {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            std::ptr::null_mut()
        }
    }
}

/// Values that parsers mishandle: zero, all ones, signed limits, powers of
/// two near the limits.
const EXTREME_WORDS: [u64; 8] = [0, 1, 0x7f, 0xff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, u64::MAX];

/// Decimal numbers that overflow, go negative or are not numbers at all.
const EXTREME_NUMBERS: [&str; 9] = ["0", "-1", "4294967296", "18446744073709551616", "99999999999999999999999", "1e308", "nan", "-0", ""];

/// Mutates samples; the same seed gives the same mutants.
pub struct Mutator {
    rng: SplitMix64,
}

impl Mutator {
    /// A mutator whose stream depends on `seed` alone.
    pub fn new(seed: u64) -> Mutator {
        Mutator { rng: SplitMix64(seed) }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    /// One to four mutations of `sample`, stacked.
    pub fn mutate(&mut self, sample: &[u8]) -> Vec<u8> {
        let mut bytes = sample.to_vec();
        for _ in 0..1 + self.below(4) {
            self.mutate_once(&mut bytes);
        }
        bytes
    }

    fn mutate_once(&mut self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self.below(9) {
            // A flipped bit.
            0 if len > 0 => {
                let at = self.below(len);
                bytes[at] ^= 1 << self.below(8);
            }
            // A byte replaced by a random or boundary value.
            1 if len > 0 => {
                let at = self.below(len);
                bytes[at] = [0, 0xff, 0x7f, 0x80, self.rng.next_u64() as u8][self.below(5)];
            }
            // The file cut short.
            2 => bytes.truncate(self.below(len + 1)),
            // A chunk removed from the middle.
            3 if len > 1 => {
                let start = self.below(len);
                let end = (start + 1 + self.below(64)).min(len);
                bytes.drain(start..end);
            }
            // A chunk of the file copied elsewhere (repeated elements, headers).
            4 if len > 1 => {
                let start = self.below(len);
                let end = (start + 1 + self.below(256)).min(len);
                let chunk = bytes[start..end].to_vec();
                let at = self.below(len + 1);
                bytes.splice(at..at, chunk);
            }
            // Random bytes inserted.
            5 => {
                let at = self.below(len + 1);
                let junk: Vec<u8> = (0..1 + self.below(16)).map(|_| self.rng.next_u64() as u8).collect();
                bytes.splice(at..at, junk);
            }
            // A 2-, 4- or 8-byte word (a length, count or offset in a binary
            // header) set to an extreme value, either byte order.
            6 if len >= 2 => {
                let width = [2, 4, 8][self.below(3)].min(len);
                let at = self.below(len - width + 1);
                let value = EXTREME_WORDS[self.below(EXTREME_WORDS.len())];
                let le = value.to_le_bytes();
                let be = value.to_be_bytes();
                let word = if self.below(2) == 0 { &le[..width] } else { &be[8 - width..] };
                bytes[at..at + width].copy_from_slice(word);
            }
            // A decimal number in text (a frame index, shape, option) replaced.
            7 => {
                let digits: Vec<usize> = (0..len).filter(|&i| bytes[i].is_ascii_digit()).collect();
                if digits.is_empty() {
                    return;
                }
                let mut start = digits[self.below(digits.len())];
                while start > 0 && bytes[start - 1].is_ascii_digit() {
                    start -= 1;
                }
                let end = (start..len).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(len);
                let number = EXTREME_NUMBERS[self.below(EXTREME_NUMBERS.len())];
                bytes.splice(start..end, number.bytes());
            }
            // A line or field separator removed or doubled.
            _ => {
                let separators: Vec<usize> = (0..len).filter(|&i| b"\n,;=[](){}'\"".contains(&bytes[i])).collect();
                if separators.is_empty() {
                    return;
                }
                let at = separators[self.below(separators.len())];
                if self.below(2) == 0 {
                    bytes.remove(at);
                } else {
                    bytes.insert(at, bytes[at]);
                }
            }
        }
    }
}

/// The largest allocation a case may make: 16 MiB, plus 64 bytes per byte
/// of input (decoded images and decompressed arrays are larger than their
/// files, but by a bounded factor).
pub fn allocation_bound(input_len: usize) -> usize {
    (16 << 20) + 64 * input_len
}

/// The allocation bound of an image decoder: the `image` crate's default
/// `Limits::max_alloc` (512 MiB). An image's header says how large its
/// pixels are, and the decoder must allocate that before it can read them,
/// so an image reader is bounded by the decoder's limit, not by its file.
pub fn image_bound(_input_len: usize) -> usize {
    512 << 20
}

/// [`Fuzz`] with the default cases and bound.
pub fn fuzz<E>(target: &'static str, samples: &[Sample], read: impl FnMut(&[u8]) -> Result<(), E>) {
    Fuzz::new(target).run(samples, read)
}

/// One reader under mutation: its name in reports, the cases per sample and
/// the bound on a case's largest allocation.
pub struct Fuzz {
    target: &'static str,
    cases: usize,
    bound: fn(usize) -> usize,
}

impl Fuzz {
    /// [`DEFAULT_CASES`] per sample, bounded by [`allocation_bound`].
    pub fn new(target: &'static str) -> Fuzz {
        Fuzz { target, cases: DEFAULT_CASES, bound: allocation_bound }
    }

    /// Another bound on a case's largest allocation, given the input's length.
    pub fn bound(self, bound: fn(usize) -> usize) -> Fuzz {
        Fuzz { bound, ..self }
    }

    /// Fewer (or more) cases per sample, for a reader slower than most.
    /// `VIGIL_FUZZ_CASES` still overrides it.
    pub fn cases(self, cases: usize) -> Fuzz {
        Fuzz { cases, ..self }
    }

    /// Runs `read` on every sample unchanged, then on the cases' mutants of
    /// each. `read` gets the bytes and may return an error (that is what a
    /// reader should do with a bad file); it must not panic, and with
    /// [`TrackingAllocator`] installed no single allocation may exceed the
    /// bound. Panics with the first failing case of each sample, numbered so
    /// that the same target and sample reproduce it (the mutants come from
    /// [`seed_of`]); its input is saved and the report says where.
    pub fn run<E>(self, samples: &[Sample], mut read: impl FnMut(&[u8]) -> Result<(), E>) {
        let Fuzz { target, bound: bound_of, .. } = self;
        let cases = std::env::var("VIGIL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(self.cases);
        let mut failures = Vec::new();
        let (mut errors, mut total) = (0usize, 0usize);
        for (index, sample) in samples.iter().enumerate() {
            let mut mutator = Mutator::new(seed_of(target, index));
            for case in 0..=cases {
                let bytes = if case == 0 { sample.bytes.clone() } else { mutator.mutate(&sample.bytes) };
                let bound = bound_of(bytes.len());
                LARGEST.with(|l| l.set(0));
                CASE.with(|c| c.set((target, index, case)));
                LIMIT.with(|l| l.set(bound));
                let outcome = catch_unwind(AssertUnwindSafe(|| read(&bytes)));
                LIMIT.with(|l| l.set(usize::MAX));
                let largest = LARGEST.with(Cell::get);
                total += 1;
                let problem = match outcome {
                    Err(panic) => Some(format!("panicked: {}", panic_text(&panic))),
                    Ok(_) if largest > bound => {
                        Some(format!("allocated {largest} bytes at once for a {}-byte input (bound {bound})", bytes.len()))
                    }
                    Ok(Err(_)) => {
                        errors += 1;
                        None
                    }
                    Ok(Ok(())) => None,
                };
                if let Some(problem) = problem {
                    // One failure per sample: the cases after it mostly repeat it.
                    let saved = save(target, index, case, &bytes);
                    failures.push(format!("{target}: sample `{}`, case {case}: {problem}; input saved to {saved}", sample.name));
                    break;
                }
            }
        }
        let tracking = if TRACKING.load(std::sync::atomic::Ordering::Relaxed) { "" } else { " (allocations not tracked)" };
        eprintln!("fuzz {target}: {total} cases over {} samples, {errors} rejected with an error{tracking}", samples.len());
        assert!(
            failures.is_empty(),
            "{} of {total} cases failed:\n{}",
            failures.len(),
            failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// The mutator seed of a target's sample: a hash of both, stable across runs.
pub fn seed_of(target: &str, sample_index: usize) -> u64 {
    target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) ^ sample_index as u64
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default()
}

fn save(target: &str, sample: usize, case: usize, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join("vigil-fuzz-failures");
    let path = dir.join(format!("{}-{sample}-{case}.bin", target.replace(|c: char| !c.is_ascii_alphanumeric(), "_")));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, bytes)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}

/// A file that a path-taking reader can be pointed at, rewritten for each
/// case: `FuzzFile::new("labels.csv")` keeps the name (readers choose the
/// format by extension) in a fresh temporary folder, removed on drop.
pub struct FuzzFile {
    dir: PathBuf,
    path: PathBuf,
}

impl FuzzFile {
    /// A file named `name` (which may hold folders: `Test001_gt/001.bmp`)
    /// in a new temporary folder.
    pub fn new(name: &str) -> FuzzFile {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vigil-fuzz-{}-{n}", std::process::id()));
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir)).expect("creating a temporary folder");
        FuzzFile { path, dir }
    }

    /// Writes `bytes` as the file's content and returns its path.
    pub fn write(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.path, bytes).expect("writing a fuzz case");
        &self.path
    }

    /// The file's path (written or not).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder the file is in (for readers that take a folder).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FuzzFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_reproducible_and_varied() {
        let sample = b"MATLAB 5.0 header, shape (3, 4), 12 values\n1,2,3\n".to_vec();
        let a: Vec<Vec<u8>> = {
            let mut m = Mutator::new(7);
            (0..200).map(|_| m.mutate(&sample)).collect()
        };
        let b: Vec<Vec<u8>> = {
            let mut m = Mutator::new(7);
            (0..200).map(|_| m.mutate(&sample)).collect()
        };
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<&Vec<u8>> = a.iter().collect();
        assert!(distinct.len() > 180, "{} distinct mutants of 200", distinct.len());
        assert!(a.iter().any(|m| m.len() < sample.len()) && a.iter().any(|m| m.len() > sample.len()));
        assert!(a.iter().any(|m| String::from_utf8_lossy(m).contains("4294967296")), "numbers are replaced");
    }

    #[test]
    fn a_panicking_reader_fails_with_its_case() {
        let samples = [Sample::new("digits", b"12345".to_vec())];
        let result =
            catch_unwind(|| fuzz("panics on short input", &samples, |b| if b.len() < 3 { panic!("short") } else { Ok::<(), ()>(()) }));
        let message = panic_text(&result.unwrap_err());
        assert!(message.contains("sample `digits`, case") && message.contains("panicked: short"), "{message}");
    }

    #[global_allocator]
    static ALLOCATOR: TrackingAllocator = TrackingAllocator;

    #[test]
    fn a_reader_that_trusts_a_header_fails() {
        // The sample's first byte is the "header": how many MiB to allocate.
        let samples = [Sample::new("claims 64 MiB", vec![64u8, 1, 2, 3])];
        let result = catch_unwind(|| {
            fuzz("trusts its header", &samples, |b| {
                let claim = *b.first().unwrap_or(&0) as usize;
                Vec::<u8>::new().try_reserve_exact(claim << 20).map_err(|_| ())
            })
        });
        let message = panic_text(&result.unwrap_err());
        assert!(message.contains("case 0: allocated 67108864 bytes at once for a 4-byte input"), "{message}");
        assert!(!message.contains("panicked"), "{message}");
    }

    #[test]
    fn a_claim_of_a_terabyte_is_refused_not_served() {
        let samples = [Sample::new("any", vec![0u8])];
        let result = catch_unwind(|| fuzz("claims a terabyte", &samples, |_| Vec::<u8>::new().try_reserve_exact(1 << 40)));
        let message = panic_text(&result.unwrap_err());
        assert!(message.contains("case 0: allocated 1099511627776 bytes at once"), "{message}");
    }
}
