# Training: one 1-shot run per benchmark x backbone x variant x fold x training seed that some table
# needs (<fold>/seed<k>/: train.seeds, or a table's own seeds). The resumable state lives in
# <output_dir>/.state/, outside the declared outputs (Snakemake deletes
# those when a job fails): a killed or failed job resumes where it stopped when run again, and a
# finished state is never thrown away implicitly (a re-run only rewrites the outputs from it; a
# result-changing config change stops with the key named). `make fold` deletes one run's state.
# On SLURM a training longer than its job's time limit saves its state on the signal it asks for ahead
# of the limit (resources.train.save_before_limit) and exits with code 75; Snakemake resubmits it
# (slurm/config.yaml) and it resumes. The state folder keeps every attempt's log (train.log) and a
# record of each attempt (attempts.jsonl); this rule's log holds the last attempt.
# A job with several GPUs (resources.train.gpu: a number, or one per benchmark) runs one training
# process per GPU under torchrun on its node; threads, mem_mb and workers are per process.


rule train_model:
    input:
        data=lambda wildcards: paths.verified_marker(config, wildcards.benchmark),
        weights=lambda wildcards: paths.weights_path(config, wildcards.backbone),
    output:
        **{name: f"{OUT}/{grid.TRAINED_KEY}/{file}" for name, file in paths.TRAINING_FILES.items()},
    log:
        f"{OUT}/logs/train_model/{grid.TRAINED_KEY}.log",
    benchmark:
        f"{OUT}/benchmarks/train_model/{grid.TRAINED_KEY}.tsv"
    params:
        flags=lambda wildcards: flags(argv.train_flags(config, run_of(wildcards))),
        launcher=lambda wildcards: flags(argv.train_launcher(config, wildcards.benchmark)),
        # each process's share of the job's threads (Snakemake lowers {threads} to --cores on a small machine)
        threads_per_process=lambda wildcards, threads: max(1, threads // argv.training_ranks(config, wildcards.benchmark)),
    threads: lambda wildcards: job("train", "threads") * argv.training_ranks(config, wildcards.benchmark)
    resources:
        mem_mb=lambda wildcards: job("train", "mem_mb") * argv.training_ranks(config, wildcards.benchmark),
        runtime=job("train", "runtime"),
        gpu=lambda wildcards: argv.training_gpus(config, wildcards.benchmark),
        slurm_extra=argv.train_sbatch_flags(config),
        # Snakemake's attempt number of this job, for the trainer: a retry refuses to start after two
        # attempts in a row that got the time-limit signal before finishing a single step.
        attempt=lambda wildcards, attempt: attempt,
    conda:
        "../envs/hmfs.yaml"
    shell:
        "{params.launcher} -m hmfs --threads {params.threads_per_process} train {params.flags} "
        "--attempt {resources.attempt} > {log} 2>&1"
