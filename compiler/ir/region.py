"""Spatial regions of NHWC tensors, and how a windowed op runs on one: the vocabulary op modules use to
state their patch rules (patch-based inference computes a stage region by region)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Region:
    """Rows [top, bottom) and columns [left, right) of an NHWC tensor."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def h(self) -> int:
        return self.bottom - self.top

    @property
    def w(self) -> int:
        return self.right - self.left

    def union(self, other: "Region | None") -> "Region":
        if other is None:
            return self
        return Region(min(self.top, other.top), min(self.left, other.left),
                      max(self.bottom, other.bottom), max(self.right, other.right))

    def clipped(self, h: int, w: int) -> "Region":
        """This region inside an h x w map."""
        return Region(max(0, self.top), max(0, self.left), min(h, self.bottom), min(w, self.right))


@dataclass(frozen=True)
class LocalWindow:
    """How one windowed op runs in one patch: its input buffer's and output region's sizes, and its local
    padding (negative = a start offset into a larger input buffer)."""

    in_h: int
    in_w: int
    out_h: int
    out_w: int
    pad_top: int
    pad_left: int
