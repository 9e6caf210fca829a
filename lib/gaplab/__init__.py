"""gaplab: measure, train and teach the modality gap and object bias of CLIP-style models.

The book's chapters import from here; every number a chapter shows is computed by these modules.
"""

__version__ = "0.1.0"

from gaplab.profiles import PROFILES, Profile, resolve_profile  # noqa: E402

__all__ = ["PROFILES", "Profile", "resolve_profile", "__version__"]
