# Figures, drawn from result files only (history.jsonl, evaluation JSON and predictions; Fig. 6 from
# the backbone weights file and one prepared support image); Fig. 7 and the runtime plot read exactly
# the files their rule lists, handed on the command line. The plotting code is an input, so
# restyling a plot re-runs only the plot (and the report). Each figure is optional: only those under
# `figures:` in the config get a rule.

FIGURE_CODE = code_files("hmfs.commands.figures")  # the figures command and every hmfs module it imports


if "convergence" in FIGURES:

    localrules:
        plot_convergence,

    rule plot_convergence:
        input:
            histories=rule_inputs.figure_inputs(config, "convergence"),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["convergence"], caption="../report/fig7_convergence.rst", category="Figures",
                       subcategory="Fig. 7: convergence", labels={"figure": "Fig. 7: convergence"}),
            numbers=FIGURES["convergence"].replace(".png", ".json"),
        params:
            flags=flags(argv.figure_flags(config, "convergence")),
        log:
            f"{OUT}/logs/plot_convergence.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} --histories {input.histories:q} > {log} 2>&1"


if "qualitative" in FIGURES:

    localrules:
        plot_qualitative,

    rule plot_qualitative:
        input:
            predictions=rule_inputs.figure_inputs(config, "qualitative"),
            data=paths.verified_marker(config, config["figures"]["qualitative"]["benchmark"]),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["qualitative"], caption="../report/fig5_qualitative.rst", category="Figures",
                       subcategory="Fig. 5: qualitative", labels={"figure": "Fig. 5: qualitative"}),
            numbers=FIGURES["qualitative"].replace(".png", ".json"),
        params:
            flags=flags(argv.figure_flags(config, "qualitative")),
        log:
            f"{OUT}/logs/plot_qualitative.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} > {log} 2>&1"


if "small_targets" in FIGURES:

    localrules:
        plot_small_targets,

    rule plot_small_targets:
        input:
            predictions=rule_inputs.figure_inputs(config, "small_targets"),
            data=paths.verified_marker(config, config["figures"]["small_targets"]["benchmark"]),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["small_targets"], caption="../report/fig4_small_targets.rst", category="Figures",
                       subcategory="Fig. 4: smallest targets", labels={"figure": "Fig. 4: smallest targets"}),
            numbers=FIGURES["small_targets"].replace(".png", ".json"),
        params:
            flags=flags(argv.figure_flags(config, "small_targets")),
        log:
            f"{OUT}/logs/plot_small_targets.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} > {log} 2>&1"


if "feature_maps" in FIGURES:

    localrules:
        plot_feature_maps,

    # Computes features (one support image through the frozen backbone): the model code is an input too.
    rule plot_feature_maps:
        input:
            weights=rule_inputs.figure_inputs(config, "feature_maps"),
            data=paths.verified_marker(config, config["figures"]["feature_maps"]["benchmark"]),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["feature_maps"], caption="../report/fig6_feature_maps.rst", category="Figures",
                       subcategory="Fig. 6: FM vs IM feature maps", labels={"figure": "Fig. 6: FM vs IM feature maps"}),
            numbers=FIGURES["feature_maps"].replace(".png", ".json"),
        params:
            flags=flags(argv.figure_flags(config, "feature_maps")),
        log:
            f"{OUT}/logs/plot_feature_maps.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs --threads 1 figures {params.flags} > {log} 2>&1"


if "runtime" in FIGURES:

    localrules:
        plot_runtime,

    rule plot_runtime:
        input:
            evaluations=rule_inputs.figure_inputs(config, "runtime"),
            code=FIGURE_CODE,
        output:
            png=report(FIGURES["runtime"], caption="../report/runtime.rst", category="Figures",
                       subcategory="Runtime by masking", labels={"figure": "Runtime by masking"}),
            numbers=FIGURES["runtime"].replace(".png", ".json"),
        params:
            flags=flags(argv.figure_flags(config, "runtime")),
        log:
            f"{OUT}/logs/plot_runtime.log",
        conda:
            "../envs/hmfs.yaml"
        shell:
            "python -m hmfs figures {params.flags} --evaluations {input.evaluations:q} > {log} 2>&1"
