//! A real Slurm cluster renders a manifest as a job array: a private single-node cluster from
//! Debian's packages (munge, slurmctld, slurmd, slurm-client) in a temporary folder, one
//! `sbatch --wait --array=0-3` of `rtfx render --manifest … --shard slurm --jobs auto --log …
//! --resume`, and its outputs against a single-process render of the same manifest; then a second
//! submission, which must render nothing. Every daemon started is stopped. Skipped, with the
//! reason printed, where the machine cannot run them (not root, or the packages are missing).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{rtfx, write_float_wav};

/// The cluster's daemons; dropping it stops them.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    socket: PathBuf,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Starts munged, slurmctld and slurmd, and waits for the node to be idle.
    fn start(dir: &Path) -> Result<Cluster, String> {
        let run = |c: &mut Command| -> Result<(), String> {
            let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{c:?}: {}", String::from_utf8_lossy(&out.stderr)))
            }
        };
        for sub in ["state", "spool", "run"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let key = dir.join("munge.key");
        run(Command::new("mungekey").arg("-c").arg("-k").arg(&key))?;
        let socket = dir.join("munge.sock");
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
            socket: socket.clone(),
        };
        run(Command::new("munged")
            .arg("-f")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--log-file={}", dir.join("munged.log").display()))
            .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
            .arg(format!("--seed-file={}", dir.join("munged.seed").display())))?;
        let host = String::from_utf8_lossy(
            &Command::new("hostname")
                .output()
                .map_err(|e| e.to_string())?
                .stdout,
        )
        .trim()
        .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Free ports, so that nothing else on the machine is in the way.
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| e.to_string())
        };
        let (ctld_port, slurmd_port) = (port()?, port()?);
        let d = dir.display();
        let conf = format!(
            "ClusterName=rtfxtest\nSlurmctldHost={host}\nSlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\nAuthType=auth/munge\nAuthInfo=socket={}\n\
             CredType=cred/munge\nSlurmUser=root\nSlurmdUser=root\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\nMpiDefault=none\nSchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nReturnToService=2\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/run/slurmctld.pid\nSlurmdPidFile={d}/run/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             NodeName={host} CPUs={cpus} State=UNKNOWN\n\
             PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            socket.display()
        );
        std::fs::write(&cluster.conf, conf).map_err(|e| e.to_string())?;
        run(&mut cluster.command("slurmctld"))?;
        run(&mut cluster.command("slurmd"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = cluster.command("sinfo").args(["-h", "-o", "%T"]).output();
            if state.is_ok_and(|s| String::from_utf8_lossy(&s.stdout).trim() == "idle") {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err("the node did not become idle within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command("scontrol").arg("shutdown").output();
        std::thread::sleep(Duration::from_millis(500));
        // Whatever did not stop is killed by its pid file.
        for pid_file in ["run/slurmctld.pid", "run/slurmd.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(pid_file)) {
                let _ = Command::new("kill").arg("-9").arg(pid.trim()).output();
            }
        }
        let _ = Command::new("munged")
            .arg("-s")
            .arg(format!("--socket={}", self.socket.display()))
            .output();
    }
}

/// Why this machine cannot run the cluster, if it cannot.
fn cannot_run() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (the daemons run as root here)".into());
    }
    for tool in [
        "mungekey",
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sinfo",
        "scontrol",
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| !o.status.success())
        {
            return Some(format!(
                "{tool} is not installed (tools/setup.sh installs munge, slurmctld, slurmd and slurm-client)"
            ));
        }
    }
    None
}

#[test]
fn a_slurm_job_array_renders_the_manifest_like_one_process_and_resubmitting_renders_nothing() {
    if let Some(why) = cannot_run() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cluster = Cluster::start(&d.join("slurm"))
        .unwrap_or_else(|e| panic!("the cluster did not start: {e}"));

    std::fs::create_dir_all(d.join("in")).unwrap();
    let mut manifest = String::new();
    for i in 0..10 {
        let x: Vec<f32> = (0..8000 + 100 * i)
            .map(|n| {
                0.3 * (std::f32::consts::TAU * (150.0 + 40.0 * i as f32) * n as f32 / 16_000.0)
                    .sin()
            })
            .collect();
        write_float_wav(&d.join(format!("in/{i}.wav")), 16_000, &[x]);
        manifest.push_str(&format!(
            "{{\"input\": \"in/{i}.wav\", \"output\": \"OUT/{i}.flac\", \"key\": \"clip-{i}\"}}\n"
        ));
    }
    std::fs::write(d.join("array.jsonl"), manifest.replace("OUT", "array")).unwrap();
    std::fs::write(d.join("single.jsonl"), manifest.replace("OUT", "single")).unwrap();
    let chain = "-e 'lobutterworth:cutoff=loguniform(1000,6000),order=4' -e 'gain:uniform(0.4,0.9)' -e 'reverb:room_size=uniform(0.2,0.8),p=0.5' --seed 5";
    let rtfx_bin = common::rtfx_bin();
    let script = format!(
        "#!/bin/sh\ncd {}\nexec {} render --manifest array.jsonl --shard slurm --jobs auto --log logs --resume {chain}\n",
        d.display(),
        Path::new(&rtfx_bin).display()
    );
    std::fs::write(d.join("job.sh"), script).unwrap();
    let submit = || {
        let out = cluster
            .command("sbatch")
            .current_dir(d)
            .args([
                "--wait",
                "--array=0-3",
                "--output=slurm-%A_%a.out",
                "job.sh",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sbatch: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let first = submit();

    // One process, the same manifest and chain.
    let args: Vec<String> = shell_words(chain);
    let mut all = vec!["render", "--manifest", "single.jsonl"];
    all.extend(args.iter().map(String::as_str));
    let r = rtfx(d, &all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for i in 0..10 {
        let name = format!("{i}.flac");
        assert_eq!(
            std::fs::read(d.join("array").join(&name)).unwrap(),
            std::fs::read(d.join("single").join(&name)).unwrap(),
            "{name}"
        );
    }
    // Four shard logs, one record per item in all.
    let mut keys = Vec::new();
    for shard in 0..4 {
        let log =
            std::fs::read_to_string(d.join(format!("logs/shard-{shard}-of-4.jsonl"))).unwrap();
        for line in log.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            keys.push(record["key"].as_str().unwrap().to_string());
        }
    }
    keys.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("clip-{i}")).collect();
    want.sort();
    assert_eq!(keys, want);

    // The same submission again renders nothing.
    let second = submit();
    for task in 0..4 {
        let out = std::fs::read_to_string(d.join(format!("slurm-{second}_{task}.out"))).unwrap();
        assert!(
            out.contains("0 of") && out.contains("already done (--resume)"),
            "task {task}: {out}"
        );
        let earlier = std::fs::read_to_string(d.join(format!("slurm-{first}_{task}.out"))).unwrap();
        assert!(
            !earlier.contains("already done"),
            "task {task} of the first run: {earlier}"
        );
    }
    drop(cluster);
}

/// Splits a shell line with single quotes into words (enough for the chain above).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}
