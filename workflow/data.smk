# Data: the synthetic benchmark is generated; the real one is downloaded (head node, only with
# data.download: true), verified, unpacked and prepared, unless data.local names the user's copies.
# Every prepared benchmark is decoded once, file by file, before any training reads it. Backbone
# weights are torchvision's files (downloaded like the data) or pretrained on synthetic classes
# disjoint from every benchmark class. Paths and flags: hmfs/pipeline/assets.py and hmfs/pipeline/grid.py.


if assets.uses_downloads(config):

    localrules:
        download_asset,  # the head node has the internet; compute nodes often do not

    rule download_asset:
        output:
            temp(f"{config['data']['downloads_dir']}/{{filename}}"),
        params:
            flags=lambda wildcards: flags(assets.download_flags(config, wildcards.filename)),
        log:
            f"{OUT}/logs/download_asset/{{filename}}.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs fetch {params.flags} > {log} 2>&1"

    rule unpack_asset:
        input:
            get_unpack_input,
        output:
            record=assets.unpack_record(config, "{asset}"),
        params:
            flags=lambda wildcards: flags(assets.unpack_flags(config, wildcards.asset)),
        log:
            f"{OUT}/logs/unpack_asset/{{asset}}.log",
        benchmark:
            f"{OUT}/benchmarks/unpack_asset/{{asset}}.tsv"
        threads: 1
        resources:
            mem_mb=job("data", "mem_mb"),
            runtime=job("data", "runtime"),
            gpu=job("data", "gpu"),
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs unpack {params.flags} > {log} 2>&1"


rule generate_synthetic:
    output:
        summary=paths.synthetic_summary(config, "{benchmark}"),
    params:
        flags=lambda wildcards: flags(argv.generate_flags(config, wildcards.benchmark)),
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
        marker=paths.prepared_marker(config, "{benchmark}"),
    params:
        flags=lambda wildcards: flags(argv.prepare_flags(config, wildcards.benchmark)),
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
        "python -m hmfs prepare --threads {threads} {params.flags} > {log} 2>&1"


rule verify_data:
    input:
        prepared=paths.prepared_marker(config, "{benchmark}"),
    output:
        marker=paths.verified_marker(config, "{benchmark}"),
    params:
        flags=lambda wildcards: flags(argv.verify_flags(config, wildcards.benchmark)),
    log:
        f"{OUT}/logs/verify_data/{{benchmark}}.log",
    benchmark:
        f"{OUT}/benchmarks/verify_data/{{benchmark}}.tsv"
    threads: job("data", "threads")
    resources:
        mem_mb=job("data", "mem_mb"),
        runtime=job("data", "runtime"),
        gpu=job("data", "gpu"),
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs verify-data --threads {threads} {params.flags} > {log} 2>&1"


if config["backbone_weights"]["source"] == "torchvision":

    localrules:
        install_backbone_weights,

    rule install_backbone_weights:
        input:
            get_weights_source,
        output:
            weights=f"{config['backbone_weights']['dir']}/{{backbone}}_imagenet.pth",
        params:
            flags=lambda wildcards, output: flags(assets.weights_flags(config, wildcards.backbone, output.weights)),
        log:
            f"{OUT}/logs/install_backbone_weights/{{backbone}}.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs fetch-weights {params.flags} > {log} 2>&1"


rule pretrain_backbone:
    input:
        summaries=[paths.synthetic_summary(config, b) for b in ("pascal", "coco", "fss")]
        if config["data"]["source"] == "synthetic"
        else [],
    output:
        weights=f"{config['backbone_weights']['dir']}/{{backbone}}_synthetic.pt",
        summary=f"{config['backbone_weights']['dir']}/{{backbone}}_synthetic.json",
    params:
        flags=lambda wildcards: flags(argv.pretrain_flags(config, wildcards.backbone)),
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
