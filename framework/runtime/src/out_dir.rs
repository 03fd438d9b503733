//! The output folder of a run: refused before any work when writing there
//! would mix outputs into the data or hand stages a path they cannot read.

use crate::pipeline::Pipeline;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Errors for an `--out` that is not UTF-8 (stages receive their work
/// folders as UTF-8 text) or that is a data folder or inside one: outputs
/// there would be read back as videos by the next run. (Data inside `--out`
/// is fine: a run only writes and clears its own output names.)
pub fn check(out: &Path, pipeline: &Pipeline) -> Result<()> {
    if out.to_str().is_none() {
        bail!("--out {}: the path is not valid UTF-8, and stages receive their work folders as text; choose another name", out.display());
    }
    let out_abs = absolute(out);
    let data = pipeline.data.test.iter().chain(&pipeline.data.extra).map(|p| (&p.path, "data"));
    for (path, what) in data.chain(pipeline.data.labels.as_ref().map(|p| (&p.path, "data.labels"))) {
        let data_abs = absolute(path);
        if out_abs == data_abs || out_abs.starts_with(&data_abs) {
            bail!(
                "--out {} is inside the {what} folder {}: outputs would mix with the data; choose a folder outside it",
                out.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// Removes `out` when it holds no file at all (only empty folders): what a
/// run that failed before writing anything leaves, when `out` did not exist
/// before it. A folder with any file in it is kept as it is.
pub fn remove_if_empty(out: &Path) {
    fn holds_a_file(dir: &Path) -> bool {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries.flatten().any(|e| match e.file_type() {
                Ok(t) if t.is_dir() => holds_a_file(&e.path()),
                _ => true,
            }),
            Err(_) => true,
        }
    }
    if out.is_dir() && !holds_a_file(out) {
        let _ = std::fs::remove_dir_all(out);
    }
}

/// `path` made absolute and with symbolic links resolved as far as it exists.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return joined,
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(test: &Path) -> Pipeline {
        let source = format!("[data]\ntest = \"{}\"\n[[stage]]\nid = \"d\"\nplugin = \"frames\"\n", test.display());
        Pipeline::parse(Path::new("/p/x.toml"), source, &[]).unwrap()
    }

    #[test]
    fn out_may_not_be_the_data_or_inside_it() {
        let dir = std::env::temp_dir().join(format!("vigil-out-dir-{}", std::process::id()));
        let data = dir.join("ped2/frames");
        std::fs::create_dir_all(&data).unwrap();
        let p = pipeline(&data);
        let same = check(&data, &p).unwrap_err().to_string();
        assert!(same.contains("is inside the data folder"), "{same}");
        assert!(check(&data.join("run1"), &p).unwrap_err().to_string().contains("is inside the data folder"));
        assert!(check(&dir, &p).is_ok(), "data inside --out is left alone");
        // Through a symbolic link to the same folder.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert!(check(&link.join("out"), &p).is_err());
        assert!(check(&dir.join("runs/out"), &p).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_out_without_files_is_removed_and_one_with_a_file_kept() {
        let dir = std::env::temp_dir().join(format!("vigil-out-empty-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("empty/work/deep")).unwrap();
        remove_if_empty(&dir.join("empty"));
        assert!(!dir.join("empty").exists());
        std::fs::create_dir_all(dir.join("kept/work")).unwrap();
        std::fs::write(dir.join("kept/work/note.txt"), "x").unwrap();
        remove_if_empty(&dir.join("kept"));
        assert!(dir.join("kept/work/note.txt").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn out_must_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let p = pipeline(Path::new("/data"));
        let out = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/vid\xe9o"));
        assert!(check(out, &p).unwrap_err().to_string().contains("not valid UTF-8"));
    }
}
