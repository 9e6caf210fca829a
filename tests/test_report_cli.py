"""``python -m gaplab report`` as a researcher meets it: which weights were measured,
the closing table, a reason for every missing value, one line for every bad checkpoint.

Uses test_zoo's tiny open_clip architecture and test_zoo_datasets' tiny data layouts;
every checkpoint is written here, nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import gaplab
from gaplab.__main__ import main
from gaplab.cli import COMMANDS
from gaplab.cli.extras import DISTRIBUTIONS, extras_of, needs_extra
from gaplab.zoo.models import CheckpointError, CheckpointMismatch, load_model
from gaplab.zoo.report import RANDOM_WEIGHTS, format_table, weights_source
from tests.test_zoo import _CFG, TINY, _register, embed_cache, tiny  # noqa: F401
from tests.test_zoo_datasets import class_folders, mitstates  # noqa: F401

DEEP = "gaplab-test-deep"  # the tiny model with a second vision block: other keys
NARROW = "gaplab-test-narrow"  # the tiny model with embed_dim 8: other shapes


@pytest.fixture(scope="module")
def other_archs(tmp_path_factory):
    """{name: (checkpoint path, state dict)} of two architectures unlike the tiny."""
    import open_clip

    folder = tmp_path_factory.mktemp("archs")
    cfgs = {
        DEEP: dict(_CFG, vision_cfg=dict(_CFG["vision_cfg"], layers=2)),
        NARROW: dict(_CFG, embed_dim=8),
    }
    out = {}
    for name, cfg in cfgs.items():
        _register(folder / "cfg", name, cfg)
        sd = open_clip.create_model(name).state_dict()
        torch.save(sd, folder / f"{name}.pt")
        out[name] = (str(folder / f"{name}.pt"), sd)
    return out


def _report(argv, capsys):
    code = main(["report", "--device", "cpu", "--quiet", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # open_clip logs a warning when it builds a model without weights (gaplab does, to
    # compare a foreign checkpoint with the architecture); the rest is gaplab's own
    ours = [ln for ln in lines if "No pretrained weights loaded" not in ln]
    assert len(ours) == 1 and "Traceback" not in err, err
    return ours[0]


# --------------------------------------------------------------------------------------
# bad checkpoints: one line each, exit code 2


def _garbage(path, good):
    path.write_bytes(b"hello world, this is no checkpoint\n" * 20)


def _empty(path, good):
    path.write_bytes(b"")


def _truncated(path, good):
    data = open(good, "rb").read()
    path.write_bytes(data[: len(data) // 2])


def _legacy_truncated(path, good):
    sd = torch.load(good, weights_only=True)
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _a_list(path, good):
    torch.save([torch.zeros(2)], path)


def _torchscript(path, good):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))


@pytest.mark.parametrize(
    "write,problem",
    [
        (
            _garbage,
            "is not a torch checkpoint: it starts with b'hello wo', neither a zip "
            "archive (torch.save) nor a pickle stream",
        ),
        (_empty, "is empty (0 bytes)"),
        (
            _truncated,
            "is a truncated or corrupt torch archive (PytorchStreamReader failed "
            "reading zip archive: failed finding central directory); copy or "
            "download it again",
        ),
        (
            _legacy_truncated,
            "is a truncated or corrupt torch file in the legacy format (unexpected "
            "EOF, expected ",
        ),
        (
            _a_list,
            "holds a list, not a state dict (parameter names to tensors)",
        ),
        (_torchscript, "is a TorchScript archive (like OpenAI's original .pt release)"),
    ],
    ids=["garbage", "empty", "truncated", "legacy-truncated", "list", "torchscript"],
)
def test_an_unreadable_checkpoint_is_one_line_naming_file_and_problem(
    tiny, class_folders, tmp_path, capsys, write, problem
):
    bad = tmp_path / "bad.pt"
    write(bad, tiny[1])
    argv = [
        "--model",
        TINY,
        "--pretrained",
        str(bad),
        "--data",
        f"folder:{class_folders}",
    ]
    with warnings.catch_warnings():
        # a warning would print lines of its own on the command line
        warnings.simplefilter("error")
        code, out, err = _report(argv, capsys)
    line = _one_error_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"error: checkpoint {bad} {problem}"), line
    # a file that cannot be read is never blamed on the architecture
    assert "--model" not in line
    with pytest.raises(CheckpointError) as info:
        load_model(TINY, str(bad), device="cpu")
    assert not isinstance(info.value, CheckpointMismatch)


def test_a_checkpoint_that_would_run_code_is_refused_unread(
    tiny, class_folders, tmp_path, capsys
):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    bad = tmp_path / "pickled.pt"
    torch.save({"visual.proj": Payload()}, bad)
    argv = [
        "--model",
        TINY,
        "--pretrained",
        str(bad),
        "--data",
        f"folder:{class_folders}",
    ]
    code, _, err = _report(argv, capsys)
    # weights_only=True: the file's code never ran, and the line says why it was refused
    assert not marker.exists()
    assert code == 2
    line = _one_error_line(err)
    assert (
        line.startswith(f"error: checkpoint {bad} holds Python objects beyond tensors")
        and "which weights_only=True refuses to unpickle" in line
    )


def test_a_checkpoint_of_another_architecture_counts_and_names_the_keys(
    tiny, other_archs, class_folders, capsys
):
    deep_path, deep_sd = other_archs[DEEP]
    tiny_keys = set(torch.load(tiny[1], weights_only=True))
    unexpected = sorted(set(deep_sd) - tiny_keys)
    assert unexpected  # the two architectures really differ in their keys
    code, _, err = _report(
        [
            "--model",
            TINY,
            "--pretrained",
            deep_path,
            "--data",
            f"folder:{class_folders}",
        ],
        capsys,
    )
    line = _one_error_line(err)
    assert code == 2 and len(line) < 600  # not the whole state dict
    assert line == (
        f"error: checkpoint {deep_path} is a state dict for another architecture than "
        f"--model {TINY}: {len(unexpected)} of its {len(deep_sd)} keys are unexpected "
        f"(e.g. {', '.join(unexpected[:3])}, ...); give --model the architecture the "
        "checkpoint was trained with"
    )
    # the other way round the same keys are missing
    code, _, err = _report(
        ["--model", DEEP, "--pretrained", tiny[1], "--data", f"folder:{class_folders}"],
        capsys,
    )
    line = _one_error_line(err)
    assert code == 2
    assert (
        f"{len(unexpected)} of the {len(deep_sd)} keys of {DEEP} are missing "
        f"(e.g. {unexpected[0]}, " in line
    )
    assert line.startswith(f"error: checkpoint {tiny[1]} is a state dict for another")


def test_a_checkpoint_of_other_shapes_names_them(
    tiny, other_archs, class_folders, capsys
):
    path, _ = other_archs[NARROW]
    code, _, err = _report(
        ["--model", TINY, "--pretrained", path, "--data", f"folder:{class_folders}"],
        capsys,
    )
    line = _one_error_line(err)
    assert code == 2
    assert line == (
        f"error: checkpoint {path} has the keys of --model {TINY} but 2 tensors of "
        f"other shapes (text_projection (32, 8) in the file, (32, 16) in {TINY}; "
        f"visual.proj (32, 8) in the file, (32, 16) in {TINY}): it is another size "
        "of architecture; give --model the architecture the checkpoint was trained with"
    )


def test_a_training_checkpoint_with_a_state_dict_entry_loads(tiny, tmp_path):
    sd = torch.load(tiny[1], weights_only=True)
    wrapped = {f"module.{k}": v for k, v in sd.items()}
    torch.save({"epoch": 3, "state_dict": wrapped}, tmp_path / "epoch_3.pt")
    loaded = load_model(TINY, str(tmp_path / "epoch_3.pt"), device="cpu")
    assert torch.equal(loaded.model.state_dict()["visual.proj"], sd["visual.proj"])


# --------------------------------------------------------------------------------------
# the weights measured


def _weights_line(printed: str) -> str:
    (line,) = [ln for ln in printed.splitlines() if ln.startswith("weights ")]
    return line


def test_a_local_checkpoint_is_named_with_its_sha256(
    tiny, class_folders, tmp_path, capsys
):
    digest = hashlib.sha256(open(tiny[1], "rb").read()).hexdigest()
    argv = [
        "--model",
        TINY,
        "--pretrained",
        tiny[1],
        "--data",
        f"folder:{class_folders}",
    ]
    code, out, _ = _report([*argv, "--out", str(tmp_path)], capsys)
    assert code == 0
    assert (
        _weights_line(out)
        == f"weights      local file {tiny[1]} (sha256 {digest[:12]})"
    )
    assert digest not in out  # the table shows the short form only
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["weights_source"] == {
        "kind": "file",
        "path": tiny[1],
        "sha256": digest,
        "description": f"local file {tiny[1]} (sha256 {digest})",
    }
    assert rep["weights"] == f"sha256:{digest}" and rep["pretrained"] == tiny[1]


def test_random_weights_are_said_in_the_table_json_and_at_the_start(
    tiny, class_folders, tmp_path, capsys
):
    argv = [
        "--model",
        TINY,
        "--data",
        f"folder:{class_folders}",
        "--out",
        str(tmp_path),
    ]
    code, out, err = _report(argv, capsys)
    assert code == 0
    assert RANDOM_WEIGHTS == "random initialisation (no --pretrained given)"
    assert _weights_line(out) == (
        f"weights      {RANDOM_WEIGHTS}: an untrained model, not a pretrained CLIP"
    )
    assert f"note: no --pretrained given: measuring {TINY} with random weights" in err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["weights_source"] == {"kind": "random", "description": RANDOM_WEIGHTS}
    assert rep["pretrained"] is None and rep["weights"] == "random-init"


def test_a_tag_is_named_as_a_tag():
    src = weights_source("laion2b_s34b_b79k", "laion2b_s34b_b79k")
    assert src == {
        "kind": "tag",
        "tag": "laion2b_s34b_b79k",
        "description": "open_clip pretrained tag laion2b_s34b_b79k",
    }
    result = {
        "model": "ViT-B-32",
        "pretrained": "laion2b_s34b_b79k",
        "weights_source": src,
        "logit_scale": 100.0,
        "data": {"coco": {"kind": "captions", "n": 5, "l2m": 0.8}},
    }
    table = format_table(result)
    assert table.splitlines()[:3] == [
        "model        ViT-B-32",
        "weights      open_clip pretrained tag laion2b_s34b_b79k",
        "logit scale  100.0 (the model's own)",
    ]


# --------------------------------------------------------------------------------------
# the closing table and the missing values


def test_closing_is_printed_as_well_as_written(
    tiny, mitstates, class_folders, tmp_path, capsys
):
    argv = [
        "--model",
        TINY,
        "--pretrained",
        tiny[1],
        "--data",
        f"mitstates:{mitstates}",
    ]
    code, out, _ = _report([*argv, "--closing", "--out", str(tmp_path)], capsys)
    assert code == 0
    closing = json.loads((tmp_path / "report.json").read_text())["data"]["mitstates"][
        "closing"
    ]
    assert len(closing) == 6
    lines = out.splitlines()
    start = lines.index(
        "closing the gap on mitstates: zero-shot accuracy as the class vectors move "
        "towards the images"
    )
    assert lines[start + 1].split() == [
        "class",
        "vectors",
        "attribute",
        "object",
        "attribute,",
        "dot",
        "object,",
        "dot",
    ]
    # report.json sorts its keys; the table keeps closing_table's order
    rows = lines[start + 3 : start + 3 + len(closing)]
    printed = {}
    for row in rows:
        variant = next(v for v in closing if re.match(re.escape(v) + r" {2,}\d", row))
        printed[variant] = row[len(variant) :].split()
    assert set(printed) == set(closing)
    for variant, acc in closing.items():
        numbers = [
            acc[k] for k in ("attribute", "object", "attribute_dot", "object_dot")
        ]
        assert printed[variant] == [f"{v:.3f}" for v in numbers]
    # asked for, but there is no attribute data: the table says so instead of nothing
    argv[-1] = f"folder:{class_folders}"
    code, out, _ = _report([*argv, "--closing", "--templates", "single"], capsys)
    assert code == 0 and "closing the gap (--closing): nothing to close" in out


def test_every_dash_has_a_footnote_saying_why(tiny, mitstates, class_folders, capsys):
    argv = ["--model", TINY, "--pretrained", tiny[1], "--templates", "single"]
    argv += ["--data", f"folder:{class_folders}", "--data", f"mitstates:{mitstates}"]
    code, out, _ = _report(argv, capsys)
    assert code == 0
    lines = out.splitlines()
    table = lines[lines.index("") + 1 :]
    notes = {m[1]: m[2] for ln in table if (m := re.match(r"\[(\d+)\] (.*)", ln))}
    marks = [re.findall(r"(?<!\S)-(\[\d+\])?(?!\S)", ln) for ln in table[2:]]
    marks = [m for row in marks for m in row]
    # every dash carries a mark, every mark has its footnote, every footnote is used
    assert marks and all(marks)
    assert {m.strip("[]") for m in marks} == set(notes)
    sep = next(ln for ln in table if ln.startswith("linear separability"))
    (n,) = re.findall(r"-\[(\d+)\]", sep)
    assert notes[n] == (
        "linear separability: needs at least 4 images and 4 texts to hold some of each "
        "out; folder has 6 images and 3 texts"
    )
    zs = next(ln for ln in table if ln.startswith("zero-shot accuracy"))
    (n,) = re.findall(r"-\[(\d+)\]", zs)
    assert notes[n] == (
        "zero-shot accuracy: measured on class data (folder, cifar10, cifar100) only; "
        "mitstates is attribute data"
    )
    moad = next(ln for ln in table if ln.startswith("MOAD image"))
    (n,) = re.findall(r"-\[(\d+)\]", moad)
    assert notes[n].endswith("only; folder is class data")


def test_an_undefined_value_is_explained_too():
    result = {
        "embeddings": "x.npy",
        "logit_scale": 100.0,
        "data": {"embeddings": {"kind": "captions", "n": 5, "l2m": float(np.nan)}},
    }
    table = format_table(result)
    assert (
        "-[1]" in table and "[1] L2M: undefined on embeddings (not a number)" in table
    )
    assert table.startswith("embeddings   x.npy (precomputed: no model loaded)")


# --------------------------------------------------------------------------------------
# help


def test_help_explains_batch_size_and_the_download_flag(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size N images encoded per forward pass (default 64)" in text
    assert "download=True" not in text
    assert "cifar-10-batches-py/ (--download fetches it)" in text
    assert "--download fetches val2017" in text


def test_a_batch_size_below_one_is_refused(tiny, class_folders, capsys):
    argv = ["--model", TINY, "--pretrained", tiny[1], "--batch-size", "0"]
    code, _, err = _report([*argv, "--data", f"folder:{class_folders}"], capsys)
    assert code == 2 and "--batch-size must be at least 1; got 0" in err


# --------------------------------------------------------------------------------------
# the `gaplab` command on the core install: --version, report --embeddings, the extras

#: what only the extras install (pyproject.toml's models, charts and book), blocked below
EXTRA_MODULES = sorted(
    set(DISTRIBUTIONS) - {"numpy", "scipy", "sklearn", "platformdirs"}  # the core
)

_CORE_ONLY = """
import sys
BLOCKED = set(sys.argv[1].split(","))

class CoreOnly:  # an import of an extra's module fails as on an install without it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, CoreOnly())
from gaplab.cli import main

try:
    code = main(sys.argv[2:])
except SystemExit as exc:  # --help and --version end in argparse
    code = exc.code
print("loaded:", sorted(m for m in BLOCKED if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _core_only(*argv, blocked=EXTRA_MODULES, cwd=None):
    """``gaplab ARGV`` in a fresh interpreter where the extras' modules cannot be imported."""
    done = subprocess.run(
        [sys.executable, "-c", _CORE_ONLY, ",".join(blocked), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    err = done.stderr.splitlines()
    assert err and err[-1] == "loaded: []", done.stderr  # nothing blocked got in
    return done.returncode, done.stdout, "\n".join(err[:-1])


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"gaplab {gaplab.__version__}\n"
    code, out, err = _core_only("--version")
    assert (code, out, err) == (0, f"gaplab {gaplab.__version__}\n", "")


def test_help_lists_every_command_under_the_name_gaplab():
    code, out, err = _core_only("--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: gaplab [-h] [--version] COMMAND ...")
    for name, text in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(text.split()[0])}", out, re.M)
    code, out, _ = _core_only("report", "--help")
    assert code == 0 and out.startswith("usage: gaplab report ")
    assert (
        'needs the models extra (pillow is not installed): pip install "gaplab[models]"'
        in out
    )


def test_report_embeddings_runs_on_the_core_install(tmp_path):
    rng = np.random.default_rng(3)
    img, txt = rng.normal(size=(12, 5)) + 0.5, rng.normal(size=(12, 5))
    np.savez(tmp_path / "pairs.npz", image=img, text=txt)
    code, out, err = _core_only(
        "report", "--embeddings", "pairs.npz", "--out", "rep", cwd=tmp_path
    )
    assert code == 0 and err == "", err
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    measured = rep["data"]["embeddings"]
    # L2M by its definition: the distance between the means of the normalised rows
    unit = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in (img, txt)]
    l2m = float(np.linalg.norm(unit[0].mean(0) - unit[1].mean(0)))
    assert measured["l2m"] == pytest.approx(l2m, rel=1e-6)
    assert re.search(rf"^L2M\s+{measured['l2m']:.3f}$", out, re.M)
    assert (
        out.splitlines()[0] == "embeddings   pairs.npz (precomputed: no model loaded)"
    )


@pytest.mark.parametrize(
    "argv, doing",
    [
        (
            ["report", "--model", "ViT-B-32", "--data", "coco:/x"],
            "gaplab report --model",
        ),
        (
            ["report", "--model", TINY, "--pretrained", "w.pt", "--data", "folder:."],
            "gaplab report --model",
        ),
    ],
    ids=["random-weights", "checkpoint"],
)
def test_a_model_without_the_models_extra_is_one_line_naming_it(argv, doing):
    code, out, err = _core_only(*argv)
    assert code == 2 and out == ""
    assert err == (
        f"error: {doing} needs the models extra (torch is not installed): "
        'pip install "gaplab[models]"'
    )


def test_the_extra_named_is_the_missing_modules_own():
    # pillow present, torch missing: the line names torch, the module that was missing
    code, _, err = _core_only(
        "report", "--model", TINY, "--data", "coco:/x", blocked=["torch", "open_clip"]
    )
    assert code == 2 and "(torch is not installed)" in err
    # `gaplab cache` needs two extras: the line names both, whichever module was missing
    for blocked in (["IPython", "altair"], ["torch"]):
        code, _, err = _core_only("cache", "where", blocked=blocked)
        assert code == 2
        assert err.startswith(
            "error: gaplab cache needs the models and charts extras ("
        )
        assert err.endswith('is not installed): pip install "gaplab[models,charts]"')


def test_needs_extra_reads_the_extra_from_the_metadata():
    requires = [
        "numpy>=1.24",
        'pandas>=2.0; extra == "charts"',
        'pandas>=2.0; extra == "models"',
        'gaplab[models]; extra == "book"',
        'altair>=5; extra == "charts"',
    ]
    missing = ModuleNotFoundError("No module named 'pandas.core'", name="pandas.core")
    assert needs_extra(missing, "doing it", requires) == (
        'doing it needs the models extra (pandas is not installed): pip install "gaplab[models]"'
    )
    assert extras_of("pandas", requires) == ["models", "charts"]
    # a distribution no extra declares: named as itself
    assert needs_extra(ModuleNotFoundError(name="PIL"), "x", requires) == (
        'x needs pillow (PIL is not installed): pip install "pillow"'
    )
    # a command's known needs are named together, with the module that was missing
    assert needs_extra(missing, "x", requires, wanted=("models", "charts")) == (
        'x needs the models and charts extras (pandas is not installed): pip install "gaplab[models,charts]"'
    )
    # a module of no known distribution is a bug, not a missing install
    assert (
        needs_extra(ModuleNotFoundError(name="gaplab.nowhere"), "x", requires) is None
    )


def test_a_missing_module_of_gaplab_itself_is_an_internal_error(monkeypatch, capsys):
    from gaplab.cli import zoo as report_cli

    def broken(args):
        raise ModuleNotFoundError(
            "No module named 'gaplab.nowhere'", name="gaplab.nowhere"
        )

    monkeypatch.setattr(report_cli, "run", broken)
    assert main(["report", "--embeddings", "x.npy"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("internal error: ModuleNotFoundError: No module named")
    Path(re.search(r"traceback is in (\S+?)\)", err).group(1)).unlink()
