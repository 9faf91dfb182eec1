"""Episode split lists: safe conversion of HSNet's lists, the SPLITS layout, and readers for each benchmark."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import re
from pathlib import Path
from typing import Any

from hmfs.runtime import atomic_write_bytes


BENCHMARK_FOLDS = {"pascal": 4, "coco": 4, "fss": 1}
PASCAL_NCLASS = 20
COCO_NCLASS = 80
FSS_SPLITS = ("trn", "val", "test")
PASCAL_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def pascal_fold_classes(fold: int) -> list[int]:
    """Test classes of PASCAL-5i fold k: 0-based 5k..5k+4 (VOC labels 5k+1..5k+5)."""
    per_fold = PASCAL_NCLASS // BENCHMARK_FOLDS["pascal"]
    return list(range(fold * per_fold, (fold + 1) * per_fold))


def coco_fold_classes(fold: int) -> list[int]:
    """Test classes of COCO-20i fold k: the interleaved indices k, k+4, ..., k+76."""
    return list(range(fold, COCO_NCLASS, BENCHMARK_FOLDS["coco"]))

# SPLITS layout (HSNet's data/splits, with COCO's pickles replaced by JSON):
#   SPLITS/pascal/{trn,val}/fold{k}.txt   lines "<image id>__<class 1..20, two digits>"
#   SPLITS/coco/{trn,val}/fold{k}.json    {"<class index 0..79>": ["train2014/COCO_train2014_....jpg", ...]}
#                                         (or fold{k}.json.gz, the same JSON gzipped)
#   SPLITS/fss/{trn,val,test}.txt         one FSS-1000 class folder name per line
SPLITS_LAYOUT = (
    "SPLITS/pascal/{trn,val}/fold{k}.txt, SPLITS/coco/{trn,val}/fold{k}.json[.gz], "
    "SPLITS/fss/{trn,val,test}.txt"
)

_PASCAL_LINE = re.compile(r"^(?P<image>\S+)__(?P<cls>\d{2})$")


class RefusingUnpickler(pickle.Unpickler):
    """An unpickler that loads only pickle's primitive containers and scalars (dict, list, str, int, ...).

    Every global lookup (the only way a pickle can reach a callable such as `os.system`) is refused,
    as are persistent ids; HSNet's COCO split lists need neither.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load the global {module}.{name}: only dict/list/str/int data is accepted"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id: only dict/list/str/int data is accepted")


def convert_coco_pickle(pkl_path: Path) -> dict[int, list[str]]:
    """Read one of HSNet's COCO split pickles without executing anything: class index -> image paths.

    The file must hold a dict whose keys are ints (COCO class indices 0..79) and whose values are
    lists of str (`train2014/COCO_train2014_....jpg`). Raises ValueError naming the file when it is
    not such a dict or when it asks for any global (e.g. a pickle crafted to call os.system).
    """
    pkl_path = Path(pkl_path)
    data = pkl_path.read_bytes()
    try:
        obj = RefusingUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as error:
        raise ValueError(f"unsafe or invalid pickle {pkl_path}: {error}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as error:
        raise ValueError(f"unreadable pickle {pkl_path}: {error}") from None
    return _validate_class_lists(obj, pkl_path)


def _validate_class_lists(obj: Any, source: Path) -> dict[int, list[str]]:
    """Check `obj` is dict[int, list[str]] with class indices in 0..79; return it with sorted keys."""
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a dict of class index -> list of image paths, got {type(obj).__name__}")
    out: dict[int, list[str]] = {}
    for key, value in obj.items():
        if type(key) is not int or not 0 <= key < COCO_NCLASS:
            raise ValueError(f"{source}: key {key!r} is not a COCO class index (int in 0..{COCO_NCLASS - 1})")
        if not isinstance(value, list) or not all(type(item) is str for item in value):
            raise ValueError(f"{source}: the value of class {key} is not a list of str")
        out[key] = list(value)
    return dict(sorted(out.items()))


def coco_lists_to_json_bytes(class_lists: dict[int, list[str]], compress: bool) -> bytes:
    """Serialise class index -> image paths as JSON (string keys), gzipped reproducibly if `compress`."""
    text = json.dumps({str(k): v for k, v in sorted(class_lists.items())}, separators=(",", ":")) + "\n"
    raw = text.encode()
    if not compress:
        return raw
    buffer = io.BytesIO()
    # mtime=0 and no file name: converting twice gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as handle:
        handle.write(raw)
    return buffer.getvalue()


def read_list_file(path: Path) -> list[str]:
    """Non-empty lines of a text list, whatever its line ends (LF, CRLF or CR), stripped."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def normalised_list_bytes(lines: list[str]) -> bytes:
    """Lines joined with LF and a final LF (HSNet's readers drop the last element after split('\\n'))."""
    return ("\n".join(lines) + "\n").encode()


def parse_pascal_lines(lines: list[str], source: Path) -> list[tuple[str, int]]:
    """`<image id>__<NN>` lines -> [(image id, class index 0..19)]; ValueError names a bad line."""
    pairs = []
    for number, line in enumerate(lines, start=1):
        match = _PASCAL_LINE.match(line)
        cls = int(match["cls"]) if match else -1
        if not match or not 1 <= cls <= PASCAL_NCLASS:
            raise ValueError(
                f"{source}:{number}: {line!r} is not '<image id>__<class 01..{PASCAL_NCLASS}>'"
            )
        pairs.append((match["image"], cls - 1))
    return pairs


# ---------------------------------------------------------------------------------------------
# SPLITS layout
# ---------------------------------------------------------------------------------------------

def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found: {path}; expected the layout {SPLITS_LAYOUT} "
        "(write it with `python -m hmfs convert-splits`, or pass hmfs.data.splits.packaged_splits_dir())"
    )


def packaged_splits_dir() -> Path:
    """The SPLITS tree shipped inside the package (HSNet's lists converted to text / gzipped JSON)."""
    path = Path(__file__).resolve().parent.parent / "splits"
    if not path.is_dir():
        raise FileNotFoundError(f"packaged split lists missing: {path} (reinstall hmfs)")
    return path


def pascal_split_file(splits_dir: Path, split: str, fold: int) -> Path:
    """SPLITS/pascal/{trn,val}/fold{k}.txt (FileNotFoundError when absent)."""
    path = Path(splits_dir) / "pascal" / split / f"fold{fold}.txt"
    if not path.is_file():
        raise _missing(path, "PASCAL split list")
    return path


def coco_split_file(splits_dir: Path, split: str, fold: int) -> Path:
    """SPLITS/coco/{trn,val}/fold{k}.json, else fold{k}.json.gz (FileNotFoundError when neither exists)."""
    plain = Path(splits_dir) / "coco" / split / f"fold{fold}.json"
    for path in (plain, plain.with_name(plain.name + ".gz")):
        if path.is_file():
            return path
    raise _missing(plain, "COCO split list (.json or .json.gz)")


def fss_split_file(splits_dir: Path, split: str) -> Path:
    """SPLITS/fss/{trn,val,test}.txt (FileNotFoundError when absent)."""
    path = Path(splits_dir) / "fss" / f"{split}.txt"
    if not path.is_file():
        raise _missing(path, "FSS-1000 class list")
    return path


def load_pascal_split(path: Path) -> list[tuple[str, int]]:
    """[(image id, class index 0..19)] in file order."""
    return parse_pascal_lines(read_list_file(path), Path(path))


def load_coco_split(path: Path) -> dict[int, list[str]]:
    """{class index 0..79: [image path relative to COCO2014/]} from a .json or .json.gz list."""
    path = Path(path)
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: not a valid gzip file ({error})") from None
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object of class index -> list of image paths")
    converted: dict[Any, Any] = {}
    for key, value in obj.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise ValueError(f"{path}: key {key!r} is not a class index")
        converted[int(key)] = value
    return _validate_class_lists(converted, path)


def load_fss_split(path: Path) -> list[str]:
    """FSS-1000 class folder names in file order (CRLF tolerated)."""
    return read_list_file(path)


# ---------------------------------------------------------------------------------------------
# convert-splits
# ---------------------------------------------------------------------------------------------

def convert_splits(hsnet_splits: Path, out_dir: Path, compress_coco: bool = False) -> list[Path]:
    """Write the SPLITS tree from HSNet's `data/splits` folder; return the files written.

    PASCAL and FSS lists are validated and copied with LF line ends; each COCO pickle is read with
    `convert_coco_pickle` (never `pickle.load`) and written as JSON (`.json.gz` if `compress_coco`).
    """
    hsnet_splits, out_dir = Path(hsnet_splits), Path(out_dir)
    if not hsnet_splits.is_dir():
        raise FileNotFoundError(
            f"HSNet split folder not found: {hsnet_splits}; expected pascal/{{trn,val}}/fold{{k}}.txt, "
            "coco/{trn,val}/fold{k}.pkl and fss/{trn,val,test}.txt under it"
        )
    written: list[Path] = []

    def source(relative: str) -> Path:
        path = hsnet_splits / relative
        if not path.is_file():
            raise FileNotFoundError(f"HSNet split file missing: {path}")
        return path

    for split in ("trn", "val"):
        for fold in range(BENCHMARK_FOLDS["pascal"]):
            relative = f"pascal/{split}/fold{fold}.txt"
            lines = read_list_file(source(relative))
            parse_pascal_lines(lines, hsnet_splits / relative)
            atomic_write_bytes(out_dir / relative, normalised_list_bytes(lines))
            written.append(out_dir / relative)
        for fold in range(BENCHMARK_FOLDS["coco"]):
            class_lists = convert_coco_pickle(source(f"coco/{split}/fold{fold}.pkl"))
            target = out_dir / "coco" / split / f"fold{fold}.json"
            stale = target.with_name(target.name + ".gz")
            if compress_coco:
                target, stale = stale, target
            atomic_write_bytes(target, coco_lists_to_json_bytes(class_lists, compress_coco))
            # Readers prefer .json over .json.gz: never leave an older twin next to the new file.
            stale.unlink(missing_ok=True)
            written.append(target)
    for split in FSS_SPLITS:
        relative = f"fss/{split}.txt"
        atomic_write_bytes(out_dir / relative, normalised_list_bytes(read_list_file(source(relative))))
        written.append(out_dir / relative)
    return written
