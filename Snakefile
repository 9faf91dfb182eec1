# hmfs: the HMFS paper's Tables 1-5 and figures, from data to report.
#
#   snakemake --configfile workflow/config.synthetic.yaml --cores 2   # embedded synthetic benchmark, CPU
#   snakemake --profile slurm --cores 64                               # the paper's run (config.yaml) on SLURM
#   snakemake report.html                                              # the report, as the last step
#
# Paths (coarse to fine), below config["output_dir"]:
#   <benchmark>/<backbone>/<masking>[_aug]/<fold>/seed<k>/{best.pt,last.pt,history.jsonl,...,eval_<k>shot.json}
#   released/<benchmark>/<backbone>/<masking>[_aug]/<fold>/eval_<k>shot.json (the authors' checkpoints)
#   tables/{table<N>,claims}.{csv,md,tex,html}, figures/*.png, logs/<rule>/..., benchmarks/<rule>/...
# <fold> is fold0..fold3 (PASCAL-5i, COCO-20i) or "all" (FSS-1000); seed<k> a training seed (train.seeds).
# Every path comes from hmfs.pipeline.grid.

from snakemake.utils import min_version, validate

min_version("9.0")


# config.yaml is the default; a --configfile replaces it (Snakemake would otherwise merge the two,
# and a table or row left out of the other file would silently stay).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


import sys

sys.path.insert(0, workflow.basedir)  # the hmfs package beside the Snakefile
from hmfs.pipeline.checks import check_renamed_keys
from hmfs.pipeline.config_check import check_config_schema

check_renamed_keys(config)  # a renamed key gets its new name, not the schema's bare "unexpected"
check_config_schema(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")  # one line naming the key (and the closest valid one for a typo)
validate(config, "workflow/schemas/config.schema.yaml")  # fills the schema's defaults


report: "report/workflow.rst"


include: "workflow/common.smk"
include: "workflow/data.smk"
include: "workflow/train.smk"
include: "workflow/evaluate.smk"
include: "workflow/tables.smk"
include: "workflow/claims.smk"
include: "workflow/figures.smk"
include: "workflow/report.smk"
include: "workflow/cluster.smk"


# Once the jobs are planned, before the first one runs (never in a dry run): no download unless
# data.download allows it (workflow/common.smk), a SLURM run that can work (workflow/cluster.smk), and
# the grid's estimated cost in the log (`python -m hmfs plan` prints it whole).
# Snakemake keeps a single onstart handler, so every such check is called from here.
onstart:
    check_planned_downloads()
    check_slurm_submission()
    show_plan()


rule all:
    input:
        get_final_outputs(),
    default_target: True
