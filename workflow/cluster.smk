# SLURM runs (`snakemake --profile slurm`): before the first sbatch, check that SLURM can run every job
# (time, memory, CPUs, GPUs against its partition's limits) and that Snakemake can follow them (the
# job-state command works); otherwise stop with every problem and its fix, instead of jobs that stay
# PENDING forever or a Snakemake that waits forever. The checks are hmfs.pipeline.cluster (tested Python).

from snakemake.logging import logger

from hmfs.pipeline import cluster


def get_slurm_requests():
    """What each rule submitted to SLURM asks for (local rules run where snakemake runs)."""
    requests = set()
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue
        resources = job.resources
        requests.add(
            cluster.JobRequest(
                rule_name=job.rule.name,
                partition=resources.get("slurm_partition"),
                runtime_min=resources.get("runtime"),
                mem_mb=resources.get("mem_mb"),
                cpus=job.threads,
                gpus=resources.get("gpu", 0),
                signal_lead_s=cluster.signal_lead(resources.get("slurm_extra")),
            )
        )
    return sorted(requests, key=lambda r: r.rule_name)


def check_slurm_submission():
    """Called by the workflow's one onstart handler (Snakefile): Snakemake keeps only one."""
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        settings = workflow.executor_settings
        problems = cluster.check_submission(
            get_slurm_requests(), settings.status_command, settings.init_seconds_before_status_checks
        )
        if problems:
            raise WorkflowError(
                "this SLURM run cannot work as configured (nothing was submitted):\n- " + "\n- ".join(problems)
            )
        note = cluster.account_note(any(job.resources.get("slurm_account") for job in workflow.dag.needrun_jobs()))
        if note:
            logger.info(f"Note: {note}")
