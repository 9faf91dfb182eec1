"""The result files a rule hands a report command, each placed by what its path says it is: no grid, no search of the disk.

A file's path is the workflow's name for it (hmfs.pipeline.paths): <results>/<run key>/eval_<k>shot.json
(eval_on_<benchmark>_<k>shot.json across domains) or <results>/<run key>/history.jsonl. The evaluation
JSON records benchmark, backbone, masking, fold and shot, but not the augmentation or the training seed,
so the path is what tells the file's evaluation; it is read back and checked against `evaluation_path`.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, TypeVar

from hmfs.names import BENCHMARKS, fold_names, parse_variant
from hmfs.pipeline.grid import Evaluation, Run, parse_run_key
from hmfs.pipeline.paths import TRAINING_FILES, evaluation_path, run_dir

HISTORY = TRAINING_FILES["history"]  # a trained run's validation mIoU per epoch, in the run's folder
_EVALUATION = re.compile(r"eval_(?:on_(?P<test>[a-z]+)_)?(?P<shot>[0-9]+)shot\.json")
_KEY_PARTS = 5  # Run.key: benchmark/backbone/variant/fold/seed<k>, or released/benchmark/backbone/variant/fold
Key = TypeVar("Key")


def _run_and_results(path: str) -> tuple[Run, str]:
    """The run whose folder holds the file `path`, and the results folder above that run folder."""
    folder = PurePosixPath(path).parent
    if len(folder.parts) < _KEY_PARTS:
        raise ValueError(f"{path} is not inside a run folder (<results>/<benchmark>/<backbone>/<variant>/<fold>/seed<k>/)")
    try:
        run = parse_run_key("/".join(folder.parts[-_KEY_PARTS:]))
        parse_variant(run.variant)  # a ValueError naming the variant when it is none
    except ValueError as error:
        raise ValueError(f"{path} is not inside a run folder: {error}") from None
    if run.benchmark not in BENCHMARKS or run.fold not in fold_names():
        raise ValueError(f"{path} is not inside a run folder: benchmark {run.benchmark!r} or fold {run.fold!r} unknown "
                         f"(benchmarks {', '.join(BENCHMARKS)}; folds {', '.join(fold_names())})")
    return run, str(PurePosixPath(*folder.parts[:-_KEY_PARTS])) if len(folder.parts) > _KEY_PARTS else "."


def evaluation_of(path: Path | str) -> Evaluation:
    """The evaluation an evaluation file holds, from its path (`hmfs.pipeline.paths.evaluation_path` read backwards)."""
    run, results = _run_and_results(str(path))
    match = _EVALUATION.fullmatch(PurePosixPath(path).name)
    evaluation = Evaluation(run, int(match["shot"]), match["test"] or run.benchmark) if match else None
    if evaluation is None or PurePosixPath(evaluation_path(results, evaluation)) != PurePosixPath(path):
        raise ValueError(f"{path} is not named as an evaluation file (eval_<k>shot.json, or eval_on_<benchmark>_<k>shot.json "
                         "across domains)")
    return evaluation


def history_run(path: Path | str) -> Run:
    """The trained run a history.jsonl belongs to, from its path."""
    run, results = _run_and_results(str(path))
    if run.origin != "trained" or PurePosixPath(f"{run_dir(results, run)}/{HISTORY}") != PurePosixPath(path):
        raise ValueError(f"{path} is not a trained run's {HISTORY}")
    return run


def relative_name(evaluation: Evaluation) -> str:
    """An evaluation's file below the results folder, for naming one that was not handed in."""
    return str(PurePosixPath(evaluation_path(".", evaluation)))


def history_name(run: Run) -> str:
    """A run's history below the results folder, for naming one that was not handed in."""
    return str(PurePosixPath(run_dir(".", run)) / HISTORY)


def _index(paths: Iterable[Path | str], key_of: Callable[[str], Key]) -> dict[Key, Path]:
    index: dict[Key, Path] = {}
    for path in map(str, paths):
        key = key_of(path)
        if key in index:
            raise ValueError(f"{index[key]} and {path} are the same {'evaluation' if isinstance(key, Evaluation) else 'run'}: "
                             "hand in one")
        index[key] = Path(path)
    return index


class ResultFiles:
    """Evaluation files and training histories handed to a command, by the evaluation or run each one is.

    Every file must exist (one FileNotFoundError lists those that do not) and be named as the
    workflow names it; two files of the same evaluation or run are an error.
    """

    def __init__(self, evaluations: Iterable[Path | str] = (), histories: Iterable[Path | str] = ()):
        evaluations, histories = list(evaluations), list(histories)
        missing = [str(p) for p in [*evaluations, *histories] if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} of the files handed in do not exist: {', '.join(missing)}")
        self.evaluations = _index(evaluations, evaluation_of)
        self.histories = _index(histories, history_run)
        self.not_handed: list[str] = []  # the files looked for and not handed in, below the results folder

    def find(self, evaluations: list[Evaluation]) -> list[Path] | None:
        """The files of `evaluations`, in order; None when one was not handed in (noted for `check_complete`)."""
        found = [self.evaluations.get(e) for e in evaluations]
        self._note([relative_name(e) for e, path in zip(evaluations, found) if path is None])
        return None if None in found else found

    def history(self, run: Run) -> Path | None:
        """The history of a trained run; None when it was not handed in (noted for `check_complete`)."""
        found = self.histories.get(run)
        self._note([] if found else [history_name(run)])
        return found

    def _note(self, names: list[str]) -> None:
        self.not_handed += [name for name in names if name not in self.not_handed]

    def check_complete(self, owner: str) -> None:
        """ValueError naming every file `owner` looked for and was not handed (the rule's list lacks them)."""
        if self.not_handed:
            raise ValueError(f"{owner} needs {len(self.not_handed)} files that were not handed in (below the results "
                             f"folder): {', '.join(self.not_handed)}")

    def refuse_extra(self, evaluation_belongs: Callable[[Evaluation], bool], owner: str,
                     history_belongs: Callable[[Run], bool] = lambda run: False) -> None:
        """ValueError naming every handed file that `owner` (e.g. "table1 (pascal, ...)") has no place for."""
        extra = [str(p) for e, p in self.evaluations.items() if not evaluation_belongs(e)]
        extra += [str(p) for r, p in self.histories.items() if not history_belongs(r)]
        if extra:
            raise ValueError(f"{len(extra)} of the files handed in are not part of {owner}: {', '.join(extra)}")
