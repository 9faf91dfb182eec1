# `snakemake report.html`: Snakemake's own report (every table and figure flagged with report(),
# with its caption), built by a nested `snakemake --report` over exactly those files.


rule report_html:
    input:
        get_report_input,
    output:
        "report.html",
    params:
        configfiles=flags(["--configfile", *workflow.overwrite_configfiles]) if workflow.overwrite_configfiles else "",
        snakefile=workflow.main_snakefile,
    log:
        f"{OUT}/logs/report_html.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "snakemake --snakefile {params.snakefile} {params.configfiles} --nolock --report {output} {input} > {log} 2>&1"
