//! On-disk cache of extraction products (per-frame flow and boxes), keyed by
//! what they depend on: the input's identity (path, size and contents
//! of every file), and the name, version and options of every stage that
//! produced them. A second run of a pipeline reuses them; changing a
//! localizer option recomputes the boxes but keeps the flow.

use crate::stage::Stage;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// A 128-bit key from two independent 64-bit FNV-1a hashes.
#[derive(Clone)]
pub struct KeyBuilder {
    a: u64,
    b: u64,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        KeyBuilder { a: 0xcbf2_9ce4_8422_2325, b: 0x6c62_272e_07bb_0142 }
    }
}

impl Hasher for KeyBuilder {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.a = (self.a ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            self.b = (self.b ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
        }
    }
    fn finish(&self) -> u64 {
        self.a
    }
}

impl KeyBuilder {
    /// Raw bytes (the contents of a file).
    pub fn bytes(mut self, bytes: &[u8]) -> KeyBuilder {
        self.write(bytes);
        self
    }
    pub fn text(mut self, text: &str) -> KeyBuilder {
        self.write(text.as_bytes());
        self.write(&[0xff]);
        self
    }
    /// A stage's identity: plugin, version and (complete) options.
    pub fn stage(self, stage: &Stage) -> KeyBuilder {
        self.text(&stage.spec.plugin).text(&stage.info.version).text(&stage.options.to_json())
    }
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.a, self.b)
    }
}

/// Identity of an input file or folder: its path, and the size and
/// contents of it or of every file in it. Contents, not modification times:
/// a copy of the data (a restored backup, a volume mounted again) is the
/// same data, and its checkpoints and cached flow and boxes stay valid.
/// Hashing reads every byte once (about 0.1 s for Ped2's 48 MB of frames).
pub fn source_identity(path: &Path) -> std::io::Result<KeyBuilder> {
    let canonical = path.canonicalize()?;
    let mut key = KeyBuilder::default().text(&canonical.display().to_string());
    let mut files = if canonical.is_dir() {
        std::fs::read_dir(&canonical)?.filter_map(|e| e.ok().map(|e| e.path())).collect()
    } else {
        vec![canonical.clone()]
    };
    files.sort();
    let mut buffer = vec![0u8; 1 << 20];
    for file in files {
        let mut contents = KeyBuilder::default();
        let mut reader = std::fs::File::open(&file)?;
        let mut len = 0u64;
        loop {
            let n = std::io::Read::read(&mut reader, &mut buffer)?;
            if n == 0 {
                break;
            }
            contents.write(&buffer[..n]);
            len += n as u64;
        }
        key = key.text(&format!("{}:{len}:{}", file.display(), contents.hex()));
    }
    Ok(key)
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: Option<PathBuf>,
}

impl Cache {
    pub fn disabled() -> Cache {
        Cache { root: None }
    }

    /// `$VIGIL_CACHE_DIR`, else `$XDG_CACHE_HOME/vigil`, else `~/.cache/vigil`.
    pub fn default_location() -> Cache {
        let root = std::env::var_os("VIGIL_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("vigil")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vigil")));
        Cache { root }
    }

    pub fn at(root: PathBuf) -> Cache {
        Cache { root: Some(root) }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn path(&self, kind: &str, key: &KeyBuilder) -> Option<PathBuf> {
        Some(self.root.as_ref()?.join(kind).join(format!("{}.f32", key.hex())))
    }

    /// The cached f32 values, if present and complete. They are read
    /// straight into the returned buffer: a video's flow is gigabytes at
    /// 856x480, and a byte buffer beside it would double that.
    pub fn load(&self, kind: &str, key: &KeyBuilder) -> Option<Vec<f32>> {
        use std::io::Read;
        let mut file = std::fs::File::open(self.path(kind, key)?).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len % 4 != 0 {
            return None;
        }
        let mut values = vec![0f32; len / 4];
        // SAFETY: the bytes of `values`, which any bit pattern leaves valid f32s.
        let bytes = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut u8, len) };
        file.read_exact(bytes).ok()?;
        if cfg!(target_endian = "big") {
            values.iter_mut().for_each(|v| *v = f32::from_le_bytes(v.to_ne_bytes()));
        }
        Some(values)
    }

    /// Stores values atomically (f32 little-endian); a failure only costs
    /// the reuse, so it is logged, not returned.
    pub fn store(&self, kind: &str, key: &KeyBuilder, values: &[f32]) {
        let Some(path) = self.path(kind, key) else { return };
        let bytes: std::borrow::Cow<[u8]> = if cfg!(target_endian = "little") {
            // SAFETY: f32 has no padding bytes; this is its memory as it is stored.
            std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) })
        } else {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| vigil_eval::write_atomic(&path, &bytes));
        if let Err(e) = written {
            tracing::warn!("could not write the cache entry {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_when_any_part_differs_and_values_round_trip() {
        let a = KeyBuilder::default().text("video").text("opts");
        assert_eq!(a.hex(), KeyBuilder::default().text("video").text("opts").hex());
        assert_ne!(a.hex(), KeyBuilder::default().text("videoo").text("pts").hex());
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf());
        assert!(cache.load("flow", &a).is_none());
        cache.store("flow", &a, &[1.5, -2.0]);
        assert_eq!(cache.load("flow", &a).unwrap(), vec![1.5, -2.0]);
        // The file holds little-endian f32s, whatever the machine.
        let path = dir.path().join("flow").join(format!("{}.f32", a.hex()));
        assert_eq!(std::fs::read(&path).unwrap(), [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(cache.load("flow", &a).is_none(), "a truncated entry is not used");
        assert!(Cache::disabled().load("flow", &a).is_none());
    }

    #[test]
    fn source_identity_follows_the_contents_not_the_times() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("000.jpg"), b"ab").unwrap();
        let before = source_identity(dir.path()).unwrap().hex();
        // Written again with the same bytes, later: the same data.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("000.jpg"), b"ab").unwrap();
        assert_eq!(before, source_identity(dir.path()).unwrap().hex());
        // The same size, other bytes: other data.
        std::fs::write(dir.path().join("000.jpg"), b"ba").unwrap();
        assert_ne!(before, source_identity(dir.path()).unwrap().hex());
        std::fs::write(dir.path().join("000.jpg"), b"ab").unwrap();
        std::fs::write(dir.path().join("001.jpg"), b"bb").unwrap();
        assert_ne!(before, source_identity(dir.path()).unwrap().hex());
    }
}
