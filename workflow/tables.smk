# Tables 1-5 in the paper's layout, from the evaluation JSON files only (plus the published numbers
# for real benchmarks). The rule's input list is the one list of a table's evaluation files: it hands
# exactly those to the command (--evaluations), which reads nothing else. The table code is an input
# too: changing it re-runs only the tables.


rule make_table:
    input:
        unpack(get_table_input),
    output:
        csv=report(f"{OUT}/tables/{{table}}.csv", caption="../report/table.rst", category="Tables",
                   subcategory="{table}", labels={"table": "{table}", "format": "CSV"}),
        md=report(f"{OUT}/tables/{{table}}.md", caption="../report/table.rst", category="Tables",
                  subcategory="{table}", labels={"table": "{table}", "format": "Markdown"}),
        tex=report(f"{OUT}/tables/{{table}}.tex", caption="../report/table.rst", category="Tables",
                   subcategory="{table}", labels={"table": "{table}", "format": "LaTeX"}),
        html=report(f"{OUT}/tables/{{table}}.html", caption="../report/table.rst", category="Tables",
                    subcategory="{table}", labels={"table": "{table}", "format": "HTML (shown)"}),
    params:
        flags=lambda wildcards: flags(argv.table_flags(config, wildcards.table, PUBLISHED)),
    log:
        f"{OUT}/logs/make_table/{{table}}.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs tables {params.flags} --evaluations {input.evaluations:q} > {log} 2>&1"
