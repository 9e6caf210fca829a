"""Fetch the JavaScript the built site needs, so that no page loads anything from a CDN.

    python scripts/offline_assets.py vega OUT.js      vega + vega-lite + vega-embed, from vl-convert
    python scripts/offline_assets.py npm OUTDIR       ipywidgets' html-manager, require.js and MathJax, from npm

Each output is written to a temporary name and renamed, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Versions the site was checked with; html-manager 1.0.x is the embedder for ipywidgets 8.
HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"
REQUIREJS = "requirejs@2.3.8"
MATHJAX = "mathjax@3.2.2"


def write_vega_bundle(out: Path) -> None:
    import altair as alt
    import vl_convert as vlc

    # vega-lite's major.minor must match the schema altair writes, or charts fail to compile
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    versions = vlc.get_vegalite_versions()
    vl_version = major_minor if major_minor in versions else versions[-1]
    bundle = vlc.javascript_bundle(vl_version=vl_version)
    # The bundle declares top-level names; wrapped in a function it cannot clash with the theme's scripts.
    text = f"/* vega, vega-lite {vl_version}, vega-embed: bundled by vl-convert for offline use */\n(function(){{\n{bundle}\n}})();\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def _copy_tree(src: Path, dst: Path, skip=lambda p: False) -> None:
    for f in src.rglob("*"):
        if f.is_file() and not skip(f):
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)


def write_npm_assets(out_dir: Path) -> None:
    """``OUTDIR/widgets`` (html-manager, require.js) and ``OUTDIR/mathjax`` (MathJax 3's CHTML build)."""
    if shutil.which("npm") is None:
        sys.exit(
            "npm is needed to fetch the site's offline JavaScript (on Debian: apt-get install npm)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assets-", dir=out_dir.parent))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                    tmp,
                    HTML_MANAGER,
                    REQUIREJS,
                    MATHJAX,
                ],
                check=True,
            )
            modules = Path(tmp) / "node_modules"
            widgets = staging / "widgets"
            # source maps are 18 MB and not needed to draw widgets
            _copy_tree(
                modules / "@jupyter-widgets" / "html-manager" / "dist",
                widgets,
                lambda f: f.suffix == ".map",
            )
            shutil.copy2(modules / "requirejs" / "require.js", widgets / "require.js")
            # the manager loads its icon fonts from <data-jupyter-widgets-cdn>@jupyter-widgets/html-manager/dist/
            fonts = widgets / "@jupyter-widgets" / "html-manager" / "dist"
            _copy_tree(
                modules / "@jupyter-widgets" / "html-manager" / "dist",
                fonts,
                lambda f: f.suffix not in {".woff", ".woff2", ".ttf", ".eot", ".svg"},
            )
            shutil.copy2(
                modules / "@jupyter-widgets" / "html-manager" / "package.json",
                widgets / "html-manager-package.json",
            )
            es5 = modules / "mathjax" / "es5"
            mathjax = staging / "mathjax"
            # the one combined build the site uses, plus the folders it loads extensions and fonts from
            _copy_tree(
                es5, mathjax, lambda f: f.parent == es5 and f.name != "tex-mml-chtml.js"
            )
            shutil.copy2(modules / "mathjax" / "LICENSE", mathjax / "LICENSE")
        staging.chmod(0o755)  # mkdtemp makes it private; a web server must read it
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[1] not in {"vega", "npm"}:
        sys.exit(__doc__)
    out = Path(argv[2])
    if argv[1] == "vega":
        write_vega_bundle(out)
    else:
        write_npm_assets(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
