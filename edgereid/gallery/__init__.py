"""Identity galleries: :class:`Gallery` (enrol, search, match, save/load bound to a model card).

Floor 2 of the layout: imports the core and :mod:`edgereid.ops` only. ``store`` holds the gallery,
``search`` the identity-level top-k (exact and FAISS), ``file_format`` the atomic, checksummed file.
"""

from edgereid.gallery.file_format import FORMAT_VERSION
from edgereid.gallery.search import APPROX_MIN_VECTORS
from edgereid.gallery.store import Gallery, Match

__all__ = ["APPROX_MIN_VECTORS", "FORMAT_VERSION", "Gallery", "Match"]
