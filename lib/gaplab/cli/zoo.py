"""``gaplab report``: the modality gap, object bias and performance of one model on real data.

``--embeddings`` runs on the core install (numpy, scipy, scikit-learn); ``--model`` needs the models
extra (torch, open_clip), imported by :func:`gaplab.zoo.report.report` when it encodes.
"""

from __future__ import annotations

import argparse
import sys

from gaplab.cli.extras import needs_extra
from gaplab.storage import check_output_dir
from gaplab.zoo.posthoc import (
    REMEDIES,
    format_posthoc,
    posthoc_report,
    posthoc_report_embeddings,
)
from gaplab.zoo.report import (
    DEFAULT_LOGIT_SCALE,
    format_table,
    report,
    report_embeddings,
)


def _kinds_help() -> str:
    try:
        # lazy: the readers need the models extra (PIL, torchvision); --help does not
        from gaplab.zoo.datasets import KINDS
    except ModuleNotFoundError as exc:
        line = needs_extra(exc, "reading data sets (--data)")
        if line is None:
            raise
        return f"data kinds (--data KIND:PATH): {line}"
    return "data kinds (--data KIND:PATH):\n" + "\n".join(
        f"  {k:<10} {v}" for k, v in KINDS.items()
    )


def _add_remedies(p) -> None:
    """The options that change the gap before measuring it: closing it for zero-shot
    classification, or a post-hoc remedy of the embeddings."""
    p.add_argument(
        "--closing",
        action="store_true",
        help="attribute data: also close the gap with the mean gap vector and ideal words",
    )
    p.add_argument(
        "--posthoc",
        choices=tuple(REMEDIES),
        default=None,
        help="measure the embeddings after a post-hoc remedy of the gap, fitted on them: "
        "center (subtract each modality's mean; C^3), standardise (per modality and "
        "dimension, mean 0 and standard deviation 1; I0T), gap-vector (move each "
        "modality half the gap vector towards the other; Liang et al.). The report "
        "names the remedy and shows retrieval R@1 (and zero-shot accuracy) before and "
        "after it. Default: none",
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        description="Encode each data set with an open_clip model and report its modality gap (L2M, L2I, RMG, "
        "linear separability, gap dimensions, logits entropy), object bias (MOAD) and performance "
        "(retrieval R@1, zero-shot accuracy). Embeddings are cached (GAPLAB_EMBED_CACHE).",
        epilog=_kinds_help() + "\n\nexamples:\n"
        "  gaplab report --model ViT-B-32 --pretrained laion2b_s34b_b79k \\\n"
        "      --data coco:~/data/coco --data mitstates:~/data/mit-states --out reports/vitb32\n"
        "  gaplab report --embeddings data/liang2022-embeddings/features_clip.npy\n"
        "  gaplab report --embeddings data/liang2022-embeddings/features_clip.npy "
        "--posthoc center",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        help="open_clip architecture, e.g. ViT-B-32 (open_clip.list_models())",
    )
    p.add_argument(
        "--pretrained",
        help="open_clip tag (needs network once) or a local checkpoint file (a state "
        "dict, read with weights_only=True). Without it the model has random weights, "
        "and the report says so",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KIND:PATH",
        help="a data set; repeatable",
    )
    p.add_argument(
        "--embeddings",
        metavar="FILE",
        help="report on precomputed embeddings instead: a (2, N, d) .npy, or a .npz with image and text",
    )
    p.add_argument(
        "--logit-scale",
        type=float,
        default=None,
        help="logit scale for the entropy of precomputed embeddings (default 100)",
    )
    p.add_argument("--out", metavar="DIR", help="write DIR/report.json")
    p.add_argument(
        "--limit",
        type=int,
        help="use a seeded random subset of this many images per data set",
    )
    p.add_argument(
        "--templates",
        default="openai",
        choices=("openai", "simple", "single"),
        help="prompt ensemble for class data (default: OpenAI's 80 ImageNet templates)",
    )
    _add_remedies(p)
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when there is one)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="images encoded per forward pass (default 64); lower it when the device "
        "runs out of memory",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download the data sets that can be (COCO val2017, CIFAR-10, CIFAR-100)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write the embedding cache",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1; got {args.limit}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.posthoc and args.closing:
        raise ValueError(
            "--posthoc and --closing cannot be combined: the closing table moves the class "
            "vectors by a gap vector of its own, measured before any remedy; run them "
            "separately"
        )
    if args.out:
        check_output_dir(args.out, "report folder")  # before the encoding, not after
    if args.embeddings:
        if args.model or args.data or args.limit is not None:
            raise ValueError(
                "--embeddings reports on a file of embeddings: give it without --model, "
                "--data and --limit"
            )
        scale = (
            args.logit_scale if args.logit_scale is not None else DEFAULT_LOGIT_SCALE
        )
        if args.posthoc:
            result = posthoc_report_embeddings(
                args.embeddings, args.posthoc, logit_scale=scale, out_dir=args.out
            )
        else:
            result = report_embeddings(
                args.embeddings, logit_scale=scale, out_dir=args.out
            )
    else:
        if not args.model:
            raise ValueError(
                "give --model (and --pretrained) with one or more --data KIND:PATH, or --embeddings FILE"
            )
        if not args.data:
            raise ValueError(
                "give at least one --data KIND:PATH (see gaplab report --help for the kinds)"
            )
        # lazy: a missing models extra is named here, before the note below
        from gaplab.zoo import models  # noqa: F401

        if args.pretrained is None:
            # said before the encoding starts, not only in the table at its end
            print(
                f"note: no --pretrained given: measuring {args.model} with "
                "random weights (an untrained model)",
                file=sys.stderr,
            )
        common = dict(
            out_dir=args.out,
            device=args.device,
            limit=args.limit,
            templates=args.templates,
            batch_size=args.batch_size,
            download=args.download,
            cache=not args.no_cache,
            progress=not args.quiet and sys.stderr.isatty(),
        )
        if args.posthoc:
            result = posthoc_report(
                args.model, args.pretrained, args.data, args.posthoc, **common
            )
        else:
            result = report(
                args.model, args.pretrained, args.data, closing=args.closing, **common
            )
    print(format_posthoc(result) if args.posthoc else format_table(result))
    if args.out:
        print(f"\nwrote {args.out.rstrip('/')}/report.json")
    return 0
