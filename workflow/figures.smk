# Figures, drawn from result files only (history.jsonl, evaluation JSON and predictions). The
# plotting code is an input, so restyling a plot re-runs only the plot (and the report). Each figure
# is optional: only those under `figures:` in the config get a rule.

FIGURE_CODE = [f"{workflow.basedir}/hmfs/figures.py", f"{workflow.basedir}/hmfs/grid.py"]


if "convergence" in FIGURES:

    rule plot_convergence:
        input:
            histories=grid.figure_inputs(config, "convergence"),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["convergence"], caption="../report/fig7_convergence.rst", category="Figures",
                       subcategory="Fig. 7: convergence", labels={"figure": "Fig. 7: convergence"}),
            numbers=FIGURES["convergence"].replace(".png", ".json"),
        params:
            flags=flags(grid.figure_flags(config, "convergence")),
        log:
            f"{OUT}/logs/plot_convergence.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} > {log} 2>&1"


if "qualitative" in FIGURES:

    rule plot_qualitative:
        input:
            predictions=grid.figure_inputs(config, "qualitative"),
            data=grid.prepared_marker(config, config["figures"]["qualitative"]["benchmark"]),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["qualitative"], caption="../report/fig5_qualitative.rst", category="Figures",
                       subcategory="Fig. 5: qualitative", labels={"figure": "Fig. 5: qualitative"}),
            numbers=FIGURES["qualitative"].replace(".png", ".json"),
        params:
            flags=flags(grid.figure_flags(config, "qualitative")),
        log:
            f"{OUT}/logs/plot_qualitative.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} > {log} 2>&1"


if "runtime" in FIGURES:

    rule plot_runtime:
        input:
            evaluations=grid.figure_inputs(config, "runtime"),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["runtime"], caption="../report/runtime.rst", category="Figures",
                       subcategory="Runtime by masking", labels={"figure": "Runtime by masking"}),
            numbers=FIGURES["runtime"].replace(".png", ".json"),
        params:
            flags=flags(grid.figure_flags(config, "runtime")),
        log:
            f"{OUT}/logs/plot_runtime.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} > {log} 2>&1"
