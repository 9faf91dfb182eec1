# Shared wiring: the grid and every path come from hmfs.pipeline.grid (tested Python); this file only binds them.

import shlex
import sys

sys.path.insert(0, workflow.basedir)  # the hmfs package beside the Snakefile

from hmfs import names
from hmfs.pipeline import argv, assets, checks, grid, paths, plan, rule_inputs
from hmfs.pipeline.code import code_files

checks.check_grid(config)
checks.check_released_files(config)  # every released checkpoint in place, or one list of the missing ones
assets.check_data_sources(config)  # the download manifest loads; every data.local copy exists

OUT = config["output_dir"]
EVALUATIONS = grid.evaluations(config)
PUBLISHED = f"{workflow.basedir}/hmfs/paper/published_results.yaml"
CLAIMS = f"{workflow.basedir}/hmfs/paper/claims.yaml"
FIGURES = paths.figure_paths(config)


# Light or head-node work (downloads need the internet; tables, plots and the report take seconds):
# never submitted to a cluster. Rules that exist only for some configs are declared local where they
# are defined (download_asset, install_backbone_weights: workflow/data.smk; the plots: workflow/figures.smk).
localrules:
    make_table,
    make_claims,
    plot_claims,
    report_html,


# Every name's pattern comes from hmfs.names (one list of benchmarks, backbones, maskings, ...).
wildcard_constraints:
    **names.wildcard_constraints(),
    filename=assets.filename_constraint(config),
    asset=assets.asset_constraint(),


def flags(arguments):
    """A list of command-line arguments as one shell-quoted string."""
    return " ".join(shlex.quote(str(a)) for a in arguments)


def job(name, key):
    """A rule's `threads`/`resources` value from config["resources"][name]."""
    return config["resources"][name][key]


def run_of(wildcards):
    """The run of a job: from its {run} key (evaluations) or its five wildcards (training)."""
    if "run" in wildcards.keys():
        return grid.parse_run_key(wildcards.run)
    return grid.Run(wildcards.benchmark, wildcards.backbone, wildcards.variant, wildcards.fold, seed=int(wildcards.seed))


def get_final_outputs():
    outputs = [paths.evaluation_path(OUT, e) for e in EVALUATIONS]
    outputs += [path for table in config["tables"] for path in paths.table_paths(OUT, table).values()]
    outputs += list(paths.claims_paths(OUT).values()) + [paths.forest_path(OUT)]
    outputs += list(FIGURES.values())
    outputs.append("report.html")
    return outputs


def get_raw_input(wildcards):
    """The synthetic summary, or the records of the benchmark's unpacked downloads."""
    if config["data"]["source"] == "synthetic":
        return [paths.synthetic_summary(config, wildcards.benchmark)]
    return assets.prepare_records(config, wildcards.benchmark)


def get_unpack_input(wildcards):
    """The archive to unpack (downloaded, or the user's own); none for a folder the user unpacked."""
    source = assets.source_file(config, wildcards.asset)
    return [source] if source is not None else []


def get_weights_source(wildcards):
    """torchvision's weights file: downloaded, or the user's own copy."""
    return assets.source_file(config, assets.WEIGHT_ASSETS[wildcards.backbone])


def get_evaluation_input(wildcards, test_benchmark):
    """best.pt of a training, or a released checkpoint (which carries its own backbone unless configured not to)."""
    run = run_of(wildcards)
    inputs = {"checkpoint": paths.checkpoint_path(config, run), "data": paths.verified_marker(config, test_benchmark)}
    if argv.uses_backbone_weights(config, run):
        inputs["weights"] = paths.weights_path(config, run.backbone)
    return inputs


def get_table_input(wildcards):
    """The table's evaluation files (handed to `tables --evaluations`), its code and the paper's numbers."""
    return {
        "evaluations": rule_inputs.table_inputs(config, wildcards.table),
        "code": code_files("hmfs.commands.tables"),
        "published": [PUBLISHED] if config["data"]["source"] != "synthetic" else [],
    }


def get_claims_input(wildcards):
    """Every table's evaluations and the histories a convergence claim compares (handed to `claims
    --evaluations ... --histories ...`, hmfs.pipeline.rule_inputs), its code and the paper's numbers."""
    import yaml

    claims = yaml.safe_load(open(CLAIMS))["claims"]
    return {
        "evaluations": rule_inputs.claims_evaluations(config),
        "histories": rule_inputs.claims_histories(config, claims),
        "code": code_files("hmfs.commands.claims"),
        "published": PUBLISHED,
        "claims": CLAIMS,
    }


def get_report_input(wildcards):
    tables = [path for table in config["tables"] for path in paths.table_paths(OUT, table).values()]
    claims = [path for ext, path in paths.claims_paths(OUT).items() if ext != "json"] + [paths.forest_path(OUT)]
    return tables + claims + list(FIGURES.values())


def check_planned_downloads():
    """While data.download is false, a run that would download something stops before its first
    job with one list of the files, their sizes and where to put them (a dry run lists them as
    download_asset jobs). Called by the workflow's one onstart handler (Snakefile)."""
    assets.check_downloads_allowed(
        config,
        [job.wildcards.filename for job in workflow.dag.needrun_jobs() if job.rule.name == "download_asset"],
        workflow.overwrite_configfiles,
    )


def show_plan():
    """The grid's estimated cost, short, in the log of a run that starts on GPUs (called by the Snakefile's onstart)."""
    if config["device"] == "cpu":
        return
    estimate = plan.plan(config, plan.device_class_throughput(plan.DEFAULT_DEVICE_CLASS), gpus=64)  # paths relative to where snakemake runs
    print(plan.short_summary(estimate), file=sys.stderr)
