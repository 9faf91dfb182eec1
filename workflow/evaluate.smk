# Evaluation: k-shot mIoU / FB-IoU of each run's best checkpoint (1-shot and 5-shot are evaluations of
# the same 1-shot model), and Table 4's COCO -> PASCAL evaluations on the classes RePRI's protocol keeps.


rule evaluate_model:
    input:
        unpack(lambda wildcards: get_evaluation_input(wildcards, wildcards.benchmark)),
    output:
        result=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/eval_{{shot}}shot.json",
        predictions=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/eval_{{shot}}shot_predictions.npz",
    params:
        flags=lambda wildcards: flags(
            grid.evaluation_flags(
                config, grid.Evaluation(run_of(wildcards), int(wildcards.shot), wildcards.benchmark)
            )
        ),
    log:
        f"{OUT}/logs/evaluate_model/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/{{shot}}shot.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_model/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/{{shot}}shot.tsv"
    threads: job("evaluate", "threads")
    resources:
        mem_mb=job("evaluate", "mem_mb"),
        runtime=job("evaluate", "runtime"),
        gpu=job("evaluate", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs --threads {threads} evaluate {params.flags} > {log} 2>&1"


rule evaluate_cross_domain:
    input:
        unpack(lambda wildcards: get_evaluation_input(wildcards, wildcards.test_benchmark)),
    output:
        result=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/eval_on_{{test_benchmark}}_{{shot}}shot.json",
        predictions=f"{OUT}/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/eval_on_{{test_benchmark}}_{{shot}}shot_predictions.npz",
    params:
        flags=lambda wildcards: flags(
            grid.evaluation_flags(
                config, grid.Evaluation(run_of(wildcards), int(wildcards.shot), wildcards.test_benchmark)
            )
        ),
    log:
        f"{OUT}/logs/evaluate_cross_domain/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/{{test_benchmark}}_{{shot}}shot.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_cross_domain/{{benchmark}}/{{backbone}}/{{variant}}/{{fold}}/{{test_benchmark}}_{{shot}}shot.tsv"
    threads: job("evaluate", "threads")
    resources:
        mem_mb=job("evaluate", "mem_mb"),
        runtime=job("evaluate", "runtime"),
        gpu=job("evaluate", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs --threads {threads} evaluate {params.flags} > {log} 2>&1"
