//! Issue 17, batch fan-out on Slurm: a real one-node cluster on this
//! machine (scripts/slurm-cluster.sh: munged, slurmctld and slurmd with
//! everything in a temporary folder) runs `vigil manifest slurm --submit`'s
//! job array, one task per camera of a 3-camera manifest; every camera's
//! bundle is written, and each then scores its live input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vigil_tests::fleet::{fleet, Fleet};
use vigil_tests::*;

/// A running private cluster, stopped when dropped (also when a test fails).
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    /// Starts the cluster, or says why it cannot start here (`Err`).
    fn start(dir: &Path) -> Result<Cluster, String> {
        let script = repo_root().join("scripts/slurm-cluster.sh");
        let check = Command::new("bash").arg(&script).arg("check").output().expect("run slurm-cluster.sh");
        assert!(check.status.success(), "Slurm is not installed:\n{}{}", text(&check.stdout), text(&check.stderr));
        let _ = std::fs::remove_dir_all(dir);
        let started = Command::new("bash").arg(&script).arg("start").arg(dir).output().expect("run slurm-cluster.sh");
        // Stops whatever started, also when starting fails part way.
        let mut cluster = Cluster { dir: dir.to_path_buf(), conf: String::new() };
        if !started.status.success() {
            return Err(text(&started.stderr));
        }
        let line = text(&started.stdout);
        let conf = line.trim().strip_prefix("export SLURM_CONF=").unwrap_or_else(|| panic!("unexpected start output: {line}"));
        cluster.conf = conf.to_string();
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    /// Waits until `job` has left the queue.
    fn wait(&self, job: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            let queue = self.command("squeue").args(["-h", "-j", job]).output().expect("run squeue");
            if text(&queue.stdout).trim().is_empty() {
                return;
            }
            assert!(started.elapsed() < limit, "job {job} still queued after {limit:?}:\n{}", text(&queue.stdout));
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The final state of each task of array `job`, from jobcomp.txt.
    fn states(&self, job: &str) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.dir.join("log/jobcomp.txt")).unwrap_or_default();
        let field = |line: &str, key: &str| {
            line.split_whitespace().find_map(|f| f.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string()
        };
        let mut states: Vec<(String, String)> = log
            .lines()
            .filter(|line| field(line, "ArrayJobId") == job)
            .map(|line| (field(line, "ArrayTaskId"), field(line, "JobState")))
            .collect();
        states.sort();
        states
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = repo_root().join("scripts/slurm-cluster.sh");
        let _ = Command::new("bash").arg(script).arg("stop").arg(&self.dir).output();
    }
}

#[test]
fn a_slurm_job_array_fits_every_camera_of_a_manifest() {
    let work = PathBuf::from(vigil_stage_testkit::context("slurm-array").work_dir.to_string());
    let f = fleet(&work.join("fleet"), 3, "");
    let cluster = match Cluster::start(&work.join("cluster")) {
        Ok(cluster) => cluster,
        Err(why) => {
            vigil_stage_testkit::skip(&format!("the Slurm cluster cannot start on this machine:\n{why}"));
            return;
        }
    };
    let fleet_dir = f.work.join("fleet");
    let (manifest, out) = (f.manifest.to_str().unwrap(), fleet_dir.to_str().unwrap());
    let slurm = ["manifest", "slurm", manifest, "--out", out, "--sbatch-arg=--cpus-per-task=1", "--sbatch-arg=--mem=1G"];

    // Without --submit: the command, with one task per camera.
    let printed = f.vigil(&slurm, &[("SLURM_CONF", &cluster.conf)]);
    succeeded(&printed);
    let command = text(&printed.stdout);
    assert!(command.starts_with("sbatch --parsable --array=0-2 ") && command.contains("--cpus-per-task=1"), "{command}");
    assert!(command.contains(&format!("VIGIL_MANIFEST={manifest}")) && command.trim_end().ends_with("fit-array.sbatch"), "{command}");

    let submit: Vec<&str> = slurm.iter().copied().chain(["--submit"]).collect();
    let submitted = f.vigil(&submit, &[("SLURM_CONF", &cluster.conf)]);
    succeeded(&submitted);
    let job = text(&submitted.stdout).trim().to_string();
    assert!(job.parse::<u64>().is_ok(), "sbatch --parsable printed a job id: {job}");
    cluster.wait(&job, Duration::from_secs(600));

    let logs = |task: usize| {
        let log = fleet_dir.join(format!(".slurm/vigil-fit-{job}_{task}.out"));
        std::fs::read_to_string(&log).unwrap_or_else(|e| format!("({}: {e})", log.display()))
    };
    let states = cluster.states(&job);
    let expected: Vec<(String, String)> = (0..3).map(|t| (t.to_string(), "COMPLETED".to_string())).collect();
    assert_eq!(states, expected, "task logs:\n{}\n{}\n{}", logs(0), logs(1), logs(2));
    for (i, name) in f.cameras.iter().enumerate() {
        let record = Fleet::bundle(&fleet_dir, name);
        assert_eq!(record["fingerprint"]["parts"]["seed"], i.to_string(), "{name}");
        assert!(logs(i).contains(&format!("model: {}", fleet_dir.join(name).display())), "task {i}:\n{}", logs(i));
        // Each fitted camera scores its live input: a report and its scores.
        let scores = f.work.join("scores");
        succeeded(
            &f.vigil(
                &["score", "--manifest", manifest, "--models", out, "--index", &i.to_string(), "--out", scores.to_str().unwrap()],
                &[],
            ),
        );
        let run = std::fs::read_dir(scores.join(name)).unwrap().next().expect("a run folder").unwrap().path();
        assert!(run.join("report.html").is_file() && run.join("events.jsonl").is_file(), "{}", run.display());
        assert_eq!(std::fs::read_to_string(run.join("scores.csv")).unwrap().lines().count(), 41, "{name}");
    }
    println!("job array {job}: 3 cameras fitted on Slurm, states {states:?}");
}
