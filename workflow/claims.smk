# The paper's claims checked one by one (hmfs/paper/claims.yaml): each comparison's reproduced value
# with its interval and a verdict, as a table next to Tables 1-5, and the forest plot that
# summarises them. The claims read exactly the evaluations and histories the rule lists (handed on
# its command line); the plot reads the claims table's JSON only, so restyling it never re-runs the
# bootstrap.


rule make_claims:
    input:
        unpack(get_claims_input),
    output:
        csv=report(paths.claims_paths(OUT)["csv"], caption="../report/claims.rst", category="Tables",
                   subcategory="claims", labels={"table": "claims", "format": "CSV"}),
        md=report(paths.claims_paths(OUT)["md"], caption="../report/claims.rst", category="Tables",
                  subcategory="claims", labels={"table": "claims", "format": "Markdown"}),
        tex=report(paths.claims_paths(OUT)["tex"], caption="../report/claims.rst", category="Tables",
                   subcategory="claims", labels={"table": "claims", "format": "LaTeX"}),
        html=report(paths.claims_paths(OUT)["html"], caption="../report/claims.rst", category="Tables",
                    subcategory="claims", labels={"table": "claims", "format": "HTML (shown)"}),
        numbers=paths.claims_paths(OUT)["json"],
    params:
        flags=flags(argv.claims_flags(config, PUBLISHED, CLAIMS)),
    log:
        f"{OUT}/logs/make_claims.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs claims {params.flags} --evaluations {input.evaluations:q} --histories {input.histories:q} "
        "> {log} 2>&1"


rule plot_claims:
    input:
        numbers=paths.claims_paths(OUT)["json"],
        code=code_files("hmfs.commands.forest"),
    output:
        png=report(paths.forest_path(OUT), caption="../report/claims_forest.rst", category="Summary",
                   subcategory="Claims: reproduced vs paper", labels={"figure": "Claims (forest plot)"}),
        numbers=paths.forest_path(OUT).replace(".png", ".json"),
    log:
        f"{OUT}/logs/plot_claims.log",
    conda:
        "../envs/hmfs.yaml"
    shell:
        "python -m hmfs forest --claims {input.numbers} --out {output.png} > {log} 2>&1"
