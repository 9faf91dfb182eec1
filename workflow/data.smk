# Data: the synthetic benchmark is generated, real downloads are only prepared; backbone weights are
# fetched (torchvision) or pretrained on synthetic classes disjoint from every benchmark class.


rule generate_synthetic:
    output:
        summary=grid.synthetic_summary(config, "{benchmark}"),
    params:
        flags=lambda wildcards: flags(grid.generate_flags(config, wildcards.benchmark)),
    log:
        f"{OUT}/logs/generate_synthetic/{{benchmark}}.log",
    benchmark:
        f"{OUT}/benchmarks/generate_synthetic/{{benchmark}}.tsv"
    threads: job("data", "threads")
    resources:
        mem_mb=job("data", "mem_mb"),
        runtime=job("data", "runtime"),
        gpu=job("data", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs generate {params.flags} > {log} 2>&1"


rule prepare_data:
    input:
        get_raw_input,
    output:
        marker=grid.prepared_marker(config, "{benchmark}"),
    params:
        flags=lambda wildcards: flags(grid.prepare_flags(config, wildcards.benchmark)),
    log:
        f"{OUT}/logs/prepare_data/{{benchmark}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_data/{{benchmark}}.tsv"
    threads: job("data", "threads")
    resources:
        mem_mb=job("data", "mem_mb"),
        runtime=job("data", "runtime"),
        gpu=job("data", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs prepare {params.flags} > {log} 2>&1"


rule fetch_backbone_weights:
    output:
        weights=f"{config['backbone_weights']['dir']}/{{backbone}}_imagenet.pth",
    log:
        f"{OUT}/logs/fetch_backbone_weights/{{backbone}}.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs fetch-weights --backbone {wildcards.backbone} --out {output.weights} > {log} 2>&1"


rule pretrain_backbone:
    input:
        summaries=[grid.synthetic_summary(config, b) for b in ("pascal", "coco", "fss")]
        if config["data"]["source"] == "synthetic"
        else [],
    output:
        weights=f"{config['backbone_weights']['dir']}/{{backbone}}_synthetic.pt",
        summary=f"{config['backbone_weights']['dir']}/{{backbone}}_synthetic.json",
    params:
        flags=lambda wildcards: flags(grid.pretrain_flags(config, wildcards.backbone)),
    log:
        f"{OUT}/logs/pretrain_backbone/{{backbone}}.log",
    benchmark:
        f"{OUT}/benchmarks/pretrain_backbone/{{backbone}}.tsv"
    threads: job("pretrain", "threads")
    resources:
        mem_mb=job("pretrain", "mem_mb"),
        runtime=job("pretrain", "runtime"),
        gpu=job("pretrain", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs --threads {threads} pretrain {params.flags} > {log} 2>&1"
