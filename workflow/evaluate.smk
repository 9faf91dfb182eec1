# Evaluation: k-shot mIoU / FB-IoU of each run's best checkpoint (1-shot and 5-shot are evaluations of
# the same 1-shot model), and Table 4's COCO -> PASCAL evaluations on the classes RePRI's protocol keeps.
# {run} is the run's folder key, [released/]<benchmark>/<backbone>/<variant>/<fold>: runs trained here,
# or the authors' released checkpoints (results/released/...), evaluated by the same rules.


rule evaluate_model:
    input:
        unpack(lambda wildcards: get_evaluation_input(wildcards, run_of(wildcards).benchmark)),
    output:
        result=f"{OUT}/{{run}}/{grid.EVALUATION_NAME}.json",
        predictions=f"{OUT}/{{run}}/{grid.EVALUATION_NAME}_predictions.npz",
    params:
        flags=lambda wildcards: flags(
            argv.evaluation_flags(
                config, grid.Evaluation(run_of(wildcards), int(wildcards.shot), run_of(wildcards).benchmark)
            )
        ),
    log:
        f"{OUT}/logs/evaluate_model/{{run}}/{{shot}}shot.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_model/{{run}}/{{shot}}shot.tsv"
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
        result=f"{OUT}/{{run}}/{grid.CROSS_DOMAIN_NAME}.json",
        predictions=f"{OUT}/{{run}}/{grid.CROSS_DOMAIN_NAME}_predictions.npz",
    params:
        flags=lambda wildcards: flags(
            argv.evaluation_flags(
                config, grid.Evaluation(run_of(wildcards), int(wildcards.shot), wildcards.test_benchmark)
            )
        ),
    log:
        f"{OUT}/logs/evaluate_cross_domain/{{run}}/{{test_benchmark}}_{{shot}}shot.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_cross_domain/{{run}}/{{test_benchmark}}_{{shot}}shot.tsv"
    threads: job("evaluate", "threads")
    resources:
        mem_mb=job("evaluate", "mem_mb"),
        runtime=job("evaluate", "runtime"),
        gpu=job("evaluate", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs --threads {threads} evaluate {params.flags} > {log} 2>&1"
