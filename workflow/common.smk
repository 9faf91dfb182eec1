# Shared wiring: the grid and every path come from hmfs.grid (tested Python); this file only binds them.

import shlex
import sys

sys.path.insert(0, workflow.basedir)  # the hmfs package beside the Snakefile

from hmfs import grid

grid.check_grid(config)
grid.check_released_files(config)  # every released checkpoint in place, or one list of the missing ones

OUT = config["output_dir"]
EVALUATIONS = grid.evaluations(config)
PUBLISHED = f"{workflow.basedir}/hmfs/paper/published_results.yaml"
FIGURES = grid.figure_paths(config)


# Light or head-node work (downloads need the internet; tables, plots and the report take seconds):
# never submitted to a cluster.
localrules:
    fetch_backbone_weights,
    make_table,
    plot_convergence,
    plot_qualitative,
    plot_runtime,
    report_html,


wildcard_constraints:
    benchmark="pascal|coco|fss",
    test_benchmark="pascal|coco|fss",
    backbone="resnet18|resnet34|resnet50|resnet101",
    variant="(fm|im|hm)(_aug)?",
    run="(released/)?(pascal|coco|fss)/(resnet18|resnet34|resnet50|resnet101)/(fm|im|hm)(_aug)?/(fold[0-3]|all)",
    fold="fold[0-3]|all",
    shot="[0-9]+",
    table="table[1-5]",


def flags(arguments):
    """A list of command-line arguments as one shell-quoted string."""
    return " ".join(shlex.quote(str(a)) for a in arguments)


def job(name, key):
    """A rule's `threads`/`resources` value from config["resources"][name]."""
    return config["resources"][name][key]


def run_of(wildcards):
    """The run of a job: from its {run} key (evaluations) or its four wildcards (training)."""
    if "run" in wildcards.keys():
        return grid.parse_run_key(wildcards.run)
    return grid.Run(wildcards.benchmark, wildcards.backbone, wildcards.variant, wildcards.fold)


def get_final_outputs():
    outputs = [grid.evaluation_path(OUT, e) for e in EVALUATIONS]
    outputs += [path for table in config["tables"] for path in grid.table_paths(OUT, table).values()]
    outputs += list(FIGURES.values())
    outputs.append("report.html")
    return outputs


def get_raw_input(wildcards):
    """The synthetic summary; real downloads are not declared (prepare checks them and names what is missing)."""
    if config["data"]["source"] == "synthetic":
        return [grid.synthetic_summary(config, wildcards.benchmark)]
    return []


def get_evaluation_input(wildcards, test_benchmark):
    """best.pt of a training, or a released checkpoint (which carries its own backbone unless configured not to)."""
    run = run_of(wildcards)
    inputs = {"checkpoint": grid.checkpoint_path(config, run), "data": grid.prepared_marker(config, test_benchmark)}
    if grid.uses_backbone_weights(config, run):
        inputs["weights"] = grid.weights_path(config, run.backbone)
    return inputs


def get_table_input(wildcards):
    return {
        "evaluations": [grid.evaluation_path(OUT, e) for e in grid.table_evaluations(config, wildcards.table)],
        "code": [f"{workflow.basedir}/hmfs/tables.py", f"{workflow.basedir}/hmfs/grid.py"],
        "published": [PUBLISHED] if config["data"]["source"] != "synthetic" else [],
    }


def get_report_input(wildcards):
    tables = [path for table in config["tables"] for path in grid.table_paths(OUT, table).values()]
    return tables + list(FIGURES.values())
