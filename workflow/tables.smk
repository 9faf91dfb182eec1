# Tables 1-5 in the paper's layout, from the evaluation JSON files only (plus the published numbers
# for real benchmarks). hmfs/tables.py is an input: changing the table code re-runs only the tables.


rule make_table:
    input:
        unpack(get_table_input),
    output:
        csv=f"{OUT}/tables/{{table}}.csv",
        md=f"{OUT}/tables/{{table}}.md",
        tex=f"{OUT}/tables/{{table}}.tex",
        html=report(
            f"{OUT}/tables/{{table}}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    params:
        flags=lambda wildcards: flags(grid.table_flags(config, wildcards.table, PUBLISHED)),
    log:
        f"{OUT}/logs/make_table/{{table}}.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs tables {params.flags} > {log} 2>&1"
