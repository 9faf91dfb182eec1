# Training: one 1-shot run per benchmark x backbone x variant x fold that some table needs. The
# resumable state lives in <output_dir>/.state/, outside the declared outputs (Snakemake deletes
# those when a job fails): a killed or failed job resumes where it stopped when run again, and a
# finished state is never thrown away implicitly (a re-run only rewrites the outputs from it; a
# result-changing config change stops with the key named). `make fold` deletes one run's state.


rule train_model:
    input:
        data=lambda wildcards: grid.prepared_marker(config, wildcards.benchmark),
        weights=lambda wildcards: grid.weights_path(config, wildcards.backbone),
    output:
        best=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/best.pt",
        last=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/last.pt",
        history=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/history.jsonl",
        summary=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/train_summary.json",
    params:
        flags=lambda wildcards: flags(grid.train_flags(config, run_of(wildcards))),
    log:
        f"{OUT}/logs/train_model/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_model/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}.tsv"
    threads: job("train", "threads")
    resources:
        mem_mb=job("train", "mem_mb"),
        runtime=job("train", "runtime"),
        gpu=job("train", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs --threads {threads} train {params.flags} > {log} 2>&1"
