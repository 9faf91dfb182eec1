"""The whole workflow on a tiny synthetic config: data to report, a second run that does nothing, restyled
plots, and one fold again (its own file: the longest test, run beside the others by `make test`)."""

from __future__ import annotations

import shutil
import time

import pytest
import yaml

from hmfs import names
from hmfs.pipeline import grid, paths
from tests.workflow.test_workflow import job_counts, snakemake, tiny_config, workdir  # noqa: F401 (workdir: a fixture)


@pytest.mark.slow
def test_tiny_synthetic_pipeline_end_to_end(workdir):
    tiny = tiny_config(workdir)
    began = time.monotonic()
    run = snakemake(workdir, "--configfile", tiny.name, "--cores", "2")
    counts = job_counts(run.stdout + run.stderr)
    assert counts["train_model"] == 8 and counts["make_table"] == 5, counts
    out = workdir / "out"
    for table in names.TABLES:
        for ext in ("csv", "md", "tex", "html"):
            assert (out / "tables" / f"{table}.{ext}").stat().st_size > 0
        md = (out / "tables" / f"{table}.md").read_text()
        assert "synthetic benchmark" in md and "(reproduced)" in md and "Made from" in md
    assert "Made from 4 of 4 evaluation files" in (out / "tables" / "table4.md").read_text()  # {fm, hm} x {1, 5}-shot
    for figure in ("fig7_convergence", "fig5_qualitative", "fig4_small_targets", "fig6_feature_maps", "runtime"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    assert " ± " in (out / "tables" / "table5.md").read_text() and "HM − FM (paired)" in (out / "tables" / "table5.md").read_text()
    assert "verdicts about the stand-in" in (out / "tables" / "claims.md").read_text()
    assert (out / "figures" / "claims_forest.png").stat().st_size > 1000
    report = (workdir / "report.html").read_text(errors="replace")
    assert len(report) > 100_000 and "table1" in report and "fig7_convergence.png" in report
    result = yaml.safe_load((out / "coco" / "resnet18" / "hm" / "fold0" / "seed0" / "eval_on_pascal_5shot.json").read_text())
    assert result["shot"] == 5 and sorted(result["class_ids"]) == [0, 3, 8, 10, 11, 14]  # Table 4, fold 0
    # A guard against a run gone slow, not a benchmark: under `make test` it shares two cores with two other
    # workers (426 s measured on the slower AMD kind; 163-214 s with one other worker).
    assert time.monotonic() - began < 900

    # A second run has nothing to do.
    again = snakemake(workdir, "--configfile", tiny.name, "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr

    # Restyling a plot (a change to the plotting code) re-runs the plots (the claims' forest plot too: it
    # saves through plotting.py) and the report, nothing else; the code inputs come from each command's
    # imports (hmfs.pipeline.code). (Snakemake compares checksums: a bare `touch` of the code changes nothing.)
    code = workdir / "hmfs" / "report" / "plotting.py"
    code.write_text(code.read_text().replace("DPI = 110", "DPI = 100"))
    rerun = snakemake(workdir, "--configfile", tiny.name, "--cores", "2")
    counts = job_counts(rerun.stdout + rerun.stderr)
    assert set(counts) == {"plot_convergence", "plot_qualitative", "plot_small_targets", "plot_feature_maps",
                           "plot_runtime", "plot_claims", "report_html", "all"}, counts

    # One fold again: its training, its evaluations, and the tables / figures / report that read them.
    fold = "out/coco/resnet18/hm/fold0/seed0/best.pt"
    counts = job_counts(snakemake(workdir, "-n", "--configfile", tiny.name, "--forcerun", fold).stdout)
    assert counts == {"train_model": 1, "evaluate_model": 2, "evaluate_cross_domain": 2, "make_table": 3,
                      "make_claims": 1, "plot_claims": 1,
                      "plot_convergence": 1, "plot_qualitative": 1, "plot_small_targets": 1, "plot_runtime": 1,
                      "report_html": 1, "all": 1}, counts
    # Forced with its finished state kept, the run is not trained again (outputs are rewritten from
    # the state); with the state deleted (what `make fold` does) it trains from scratch.
    # (Only the training is built here: the jobs downstream of it are the dry run's above.)
    log = workdir / "out" / "logs" / "train_model" / "coco" / "resnet18" / "hm" / "fold0" / "seed0.log"
    snakemake(workdir, "--configfile", tiny.name, "--cores", "2", "--forcerun", fold, "--", fold)
    assert "resuming" in log.read_text() and "epoch 1/" not in log.read_text()
    shutil.rmtree(workdir / paths.state_dir("out", grid.Run("coco", "resnet18", "hm", "fold0")))
    snakemake(workdir, "--configfile", tiny.name, "--cores", "2", "--forcerun", fold, "--", fold)
    assert "from scratch" in log.read_text() and "epoch 2/2" in log.read_text()
