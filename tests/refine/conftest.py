"""The real-photo fixture of the refine tests (:mod:`refine_data`)."""

from refine_data import refine_data

__all__ = ["refine_data"]
