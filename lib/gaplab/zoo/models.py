"""Loading real open_clip models: by open_clip tag (weights from the Hugging Face hub) or from a local checkpoint.

Without network, open_clip retries the hub for about a minute before it gives up on a tag. Here a tag is first
looked up in the local Hugging Face cache (and open_clip's URL cache); only when it is not there is the hub
probed, with a three-second connection attempt, so an offline tag fails in seconds with a message that names
what works offline: a local checkpoint file, or precomputed embeddings.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from gaplab.storage import sha256_file
from gaplab.training.models import register_mad_presets

__all__ = [
    "ModelUnavailable",
    "CheckpointError",
    "CheckpointMismatch",
    "checkpoint_shapes",
    "LoadedModel",
    "load_model",
    "weights_id",
    "default_device",
    "hub_reachable",
]

_PROBE_TIMEOUT_S = 3.0


class ModelUnavailable(RuntimeError):
    """The weights of a tag are not on this machine and cannot be downloaded now."""


class CheckpointError(ValueError):
    """A local checkpoint cannot be read: one line naming the file and what is wrong."""


class CheckpointMismatch(CheckpointError):
    """A local checkpoint reads well but does not fit the named model architecture."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    name: str
    #: the tag or checkpoint path as given (None: random initialisation)
    pretrained: str | None
    #: what identifies the weights in cache keys: the tag, or the checkpoint's SHA-256
    weights: str
    device: torch.device

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().cpu())


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def weights_id(pretrained: str | None) -> str:
    """The tag itself, ``sha256:<hex>`` of a local checkpoint, or ``random-init``."""
    if pretrained is None:
        return "random-init"
    path = Path(pretrained).expanduser()
    return f"sha256:{sha256_file(path)}" if path.is_file() else pretrained


def _hub_host() -> str:
    return (
        urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
        or "huggingface.co"
    )


def _online(host: str) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """Whether the Hugging Face hub answers within a few seconds (open_clip's tags download from it)."""
    return _online(_hub_host())


def _cached_weights(cfg: dict) -> str | None:
    """The local file open_clip would load for a tag, when it has been downloaded before."""
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache  # optional: with open_clip

        repo, filename = os.path.split(hub)
        names = (
            [filename]
            if filename
            else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        )
        for name in names:
            hit = try_to_load_from_cache(repo, name)
            if isinstance(hit, str) and Path(hit).is_file():
                return hit
    url = cfg.get("url", "")
    if url:
        local = Path("~/.cache/clip").expanduser() / os.path.basename(
            urlparse(url).path
        )
        if local.is_file():
            return str(local)
    return None


def _offline_message(name: str, tag: str) -> str:
    return (
        f"the weights {name} / {tag} are not on this machine and {_hub_host()} cannot be reached (no network). "
        "Offline you can: pass a local checkpoint file as pretrained (--pretrained /path/to/"
        "open_clip_pytorch_model.bin), report on precomputed embeddings (--embeddings FILE.npy, an array of shape "
        "(2, N, d) like data/liang2022-embeddings/features_clip.npy), or copy the Hugging Face cache "
        "(~/.cache/huggingface/hub) from a machine that downloaded the tag. On Colab the tag downloads by itself."
    )


def _check_architecture(name: str) -> None:
    import open_clip  # heavy: loads on first model

    register_mad_presets()
    if name not in open_clip.list_models():
        close = [
            m
            for m in open_clip.list_models()
            if name.lower().replace("/", "-") in m.lower()
        ][:8]
        hint = (
            f" Close names: {', '.join(close)}."
            if close
            else " See open_clip.list_models()."
        )
        raise ValueError(f"unknown open_clip model {name!r}.{hint}")


def load_model(name: str, pretrained: str | None = None, *, device=None) -> LoadedModel:
    """An open_clip model in eval mode with its preprocessing and tokenizer.

    ``pretrained``: an open_clip tag (``open_clip.list_pretrained_tags_by_model(name)``), a path to a local
    checkpoint, or None for a randomly initialised model (seeded, so two calls give the same weights).
    """
    import open_clip  # heavy: loads on first model

    _check_architecture(name)
    device = torch.device(device) if device is not None else default_device()
    kwargs: dict = {}
    source = pretrained
    if pretrained is not None:
        path = Path(pretrained).expanduser()
        if path.is_file():
            source = str(path)
        elif (
            path.exists()
            or os.sep in pretrained
            or path.suffix in (".pt", ".bin", ".pth", ".safetensors")
        ):
            raise FileNotFoundError(f"checkpoint {pretrained} is not a file")
        else:
            tags = open_clip.list_pretrained_tags_by_model(name)
            if pretrained not in tags:
                listed = (
                    ", ".join(tags) if tags else "none: pass a local checkpoint file"
                )
                raise ValueError(
                    f"{pretrained!r} is not an open_clip tag of {name} (its tags: {listed})"
                )
            cfg = open_clip.get_pretrained_cfg(name, pretrained)
            cached = _cached_weights(cfg)
            if cached is not None:
                # a local file skips the hub; the tag's own preprocessing must then be passed along
                source = cached
                kwargs = {
                    key: cfg[src]
                    for key, src in (
                        ("image_mean", "mean"),
                        ("image_std", "std"),
                        ("image_interpolation", "interpolation"),
                        ("image_resize_mode", "resize_mode"),
                    )
                    if src in cfg
                }
            elif not _online(_hub_host()):
                raise ModelUnavailable(_offline_message(name, pretrained))
    # the file is read once here, so that what is wrong with it is not blamed on --model
    shapes = checkpoint_shapes(source) if _is_local(source) else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=source, device=device, **kwargs
            )
        except (RuntimeError, AssertionError, KeyError, ValueError, IndexError) as exc:
            # open_clip reports a foreign state dict in several ways: a load_state_dict
            # error, or an assertion in its resizing of position embeddings
            if not _is_local(source) or "out of memory" in str(exc):
                raise
            if shapes is None:
                raise CheckpointMismatch(
                    f"checkpoint {source} could not be loaded into --model {name}: "
                    f"{_first_sentence(exc)}"
                ) from None
            raise CheckpointMismatch(_mismatch(source, name, shapes, exc)) from None
    model.eval()
    return LoadedModel(
        model,
        preprocess,
        open_clip.get_tokenizer(name),
        name,
        pretrained,
        weights_id(pretrained),
        device,
    )


def _is_local(source: str | None) -> bool:
    return source is not None and Path(source).is_file()


#: how many key names a message quotes as examples
_EXAMPLES = 3
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text.split(". ")[0].rstrip(".") or type(exc).__name__)[:160]


def _unreadable(path, problem: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} {problem}")


def _torch_load(path: Path, head: bytes):
    is_zip = head.startswith(_ZIP_MAGIC)
    try:
        with warnings.catch_warnings():
            # every problem becomes the one line below; torch's warnings (a TorchScript
            # archive) would only add lines before it
            warnings.simplefilter("ignore")
            # mmap: the tensors are not read now, only their shapes are needed
            return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for one bad file
        text = str(exc)
        if not is_zip and not head.startswith(_PICKLE_MAGIC):
            # neither format torch writes: whatever the unpickler then said is beside the point
            raise _unreadable(
                path,
                f"is not a torch checkpoint: it starts with {head[:8]!r}, neither a zip "
                "archive (torch.save) nor a pickle stream",
            ) from None
        if "TorchScript" in text:
            raise _unreadable(
                path,
                "is a TorchScript archive (like OpenAI's original .pt release), which "
                "weights_only=True does not load: pass its open_clip tag instead, or "
                "save its state_dict() and pass that file",
            ) from None
        if "Weights only load failed" in text:
            raise _unreadable(
                path,
                "holds Python objects beyond tensors (a pickled model or training "
                "state?), which weights_only=True refuses to unpickle: save "
                "model.state_dict() and pass that file",
            ) from None
        if is_zip:
            raise _unreadable(
                path,
                f"is a truncated or corrupt torch archive ({_first_sentence(exc)}); "
                "copy or download it again",
            ) from None
        if head.startswith(_PICKLE_MAGIC):
            cause = (
                "it ends early" if isinstance(exc, EOFError) else _first_sentence(exc)
            )
            raise _unreadable(
                path,
                f"is a truncated or corrupt torch file in the legacy format ({cause}); "
                "copy or download it again",
            ) from None
        raise _unreadable(
            path,
            f"is not a torch checkpoint: it starts with {head[:8]!r}, neither a zip "
            "archive (torch.save) nor a pickle stream",
        ) from None


def _safetensors_shapes(path: Path) -> dict:
    from safetensors import safe_open  # optional: with open_clip

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error kinds
        raise _unreadable(
            path, f"is not a readable safetensors file ({_first_sentence(exc)})"
        ) from None


def checkpoint_shapes(path) -> dict | None:
    """``{key: shape}`` of the state dict in a local checkpoint file, read with
    ``weights_only=True`` and unwrapped as open_clip unwraps it (a ``state_dict`` entry,
    a ``module.`` prefix); None for big_vision ``.npz``/``.npy`` weights. Raises
    :class:`CheckpointError` with one line naming the file and what is wrong with it:
    empty, unreadable, not a torch file, truncated or corrupt, objects beyond tensors,
    or not a state dict."""
    p = Path(path)
    if p.suffix in (".npz", ".npy"):
        return None  # big_vision weights: open_clip converts them itself
    if p.suffix == ".safetensors":
        return _safetensors_shapes(p)
    try:
        with p.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise _unreadable(p, f"cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise _unreadable(p, "is empty (0 bytes)")
    obj = _torch_load(p, head)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise _unreadable(
            p,
            f"holds a {type(obj).__name__}, not a state dict "
            "(parameter names to tensors)",
        )
    shapes = {
        str(k): tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)
    }
    if not shapes:
        keys = ", ".join(str(k) for k in list(obj)[:_EXAMPLES]) or "none"
        raise _unreadable(p, f"holds no tensors (its keys: {keys}), not a state dict")
    if next(iter(shapes)).startswith("module"):
        shapes = {k[7:]: v for k, v in shapes.items()}
    return shapes


def _examples(names) -> str:
    names = sorted(names)
    more = ", ..." if len(names) > _EXAMPLES else ""
    return ", ".join(names[:_EXAMPLES]) + more


def _shape(s: tuple) -> str:
    return "(" + ", ".join(str(d) for d in s) + ")"


def _mismatch(source: str, name: str, shapes: dict, exc: BaseException) -> str:
    """One line saying how the checkpoint differs from the architecture ``name``."""
    import open_clip  # heavy: loads on first model

    expected = {
        k: tuple(v.shape) for k, v in open_clip.create_model(name).state_dict().items()
    }
    missing = set(expected) - set(shapes)
    unexpected = set(shapes) - set(expected)
    fix = "give --model the architecture the checkpoint was trained with"
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of the {len(expected)} keys of {name} are missing "
                f"(e.g. {_examples(missing)})"
            )
        if unexpected:
            parts.append(
                f"{len(unexpected)} of its {len(shapes)} keys are unexpected "
                f"(e.g. {_examples(unexpected)})"
            )
        return (
            f"checkpoint {source} is a state dict for another architecture than "
            f"--model {name}: {' and '.join(parts)}; {fix}"
        )
    wrong = sorted(k for k in expected if expected[k] != shapes[k])
    if wrong:
        shown = "; ".join(
            f"{k} {_shape(shapes[k])} in the file, {_shape(expected[k])} in {name}"
            for k in wrong[:_EXAMPLES]
        )
        more = "; ..." if len(wrong) > _EXAMPLES else ""
        return (
            f"checkpoint {source} has the keys of --model {name} but {len(wrong)} "
            f"tensors of other shapes ({shown}{more}): it is another size of "
            f"architecture; {fix}"
        )
    return (
        f"checkpoint {source} could not be loaded into --model {name}: "
        f"{_first_sentence(exc)}"
    )
