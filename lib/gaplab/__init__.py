"""gaplab: measure, train and teach the modality gap and object bias of CLIP-style models.

The book's chapters import from here; every number a chapter shows is computed by these modules.
"""

#: The package's version, written in this one place. pyproject.toml and the book's API reference read it from
#: here, and a test keeps CITATION.cff and the top entry of CHANGELOG.md equal to it.
__version__ = "0.2.0"

from gaplab.profiles import PROFILES, Profile, resolve_profile  # noqa: E402

__all__ = ["PROFILES", "Profile", "resolve_profile", "__version__"]
