"""Loading real open_clip models: by open_clip tag (weights from the Hugging Face hub) or from a local checkpoint.

Without network, open_clip retries the hub for about a minute before it gives up on a tag. Here a tag is first
looked up in the local Hugging Face cache (and open_clip's URL cache); only when it is not there is the hub
probed, with a three-second connection attempt, so an offline tag fails in seconds with a message that names
what works offline: a local checkpoint file, or precomputed embeddings.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from gaplab.storage import sha256_file

__all__ = [
    "ModelUnavailable",
    "CheckpointMismatch",
    "LoadedModel",
    "load_model",
    "weights_id",
    "default_device",
    "hub_reachable",
]

_PROBE_TIMEOUT_S = 3.0


class ModelUnavailable(RuntimeError):
    """The weights of a tag are not on this machine and cannot be downloaded now."""


class CheckpointMismatch(ValueError):
    """A local checkpoint does not fit the named model architecture."""


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
        from huggingface_hub import try_to_load_from_cache

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
    import open_clip

    from gaplab.models import _register

    _register()
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
    import open_clip

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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=source, device=device, **kwargs
            )
        except (RuntimeError, AssertionError, KeyError, ValueError) as exc:
            # open_clip reports a foreign state dict in several ways: a load_state_dict error, or an
            # assertion in its resizing of position embeddings
            if source is not None and Path(source).is_file():
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][
                    :4
                ] or [type(exc).__name__]
                cause = " ".join(lines).rstrip(".!")
                raise CheckpointMismatch(
                    f"checkpoint {source} does not fit the architecture {name}: {cause}. Check that --model "
                    "names the architecture the checkpoint was trained with."
                ) from None
            raise
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
