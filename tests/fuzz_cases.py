"""Building blocks of tests/test_fuzz.py.

Every array of a fuzz case is a view of raw byte buffers that carry guard bytes on both sides,
described by (buffer, offset, shape, strides, dtype, read-only): a case can be rebuilt on a
copy of its memory with its aliasing intact (for the reference twin), and a byte written
outside every array, or any byte written by a refused call, is seen.

A case knows whether it is valid by construction (float32/float64 of one dtype, matching
shapes, the layouts and aliasing each argument's role allows, hyper-parameters in range):
a valid call must succeed. Any other call may succeed (then it must match the reference)
or raise TypeError/ValueError, leaving every byte as it was.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st
from producers import DLPackOnly

GUARD = 64
FLOATS = [np.dtype(np.float32), np.dtype(np.float64)]
# dtypes no kernel takes as a floating array: other widths and kinds, and swapped byte order
BAD_DTYPES = [np.dtype(t) for t in (np.float16, np.int32, np.int64, np.uint8, np.bool_,
                                    np.complex64, ">f4", ">f8", np.longdouble)]
# values that must propagate as IEEE says: NaN, infinities, signed zeros, subnormals, extremes
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 5e-324, 3e38, -3e38,
                     1e300, 1.0, -1.0])


@dataclasses.dataclass
class View:
    buf: int
    offset: int  # bytes after the leading guard
    shape: tuple
    strides: tuple
    dtype: np.dtype
    readonly: bool = False
    wrap: str = "numpy"  # how trainkern receives it: numpy, torch, dlpack, memoryview

    def array(self, bufs):
        a = np.ndarray(self.shape, self.dtype, buffer=bufs[self.buf], offset=GUARD + self.offset,
                       strides=self.strides)
        if self.readonly:
            a.flags.writeable = False
        return a

    def extent(self):
        """[lo, hi) bytes the view can touch (as the bindings bound it), empty when size 0."""
        if 0 in self.shape:
            return (self.offset, self.offset)
        lo = sum(min(0, s * (n - 1)) for s, n in zip(self.strides, self.shape))
        hi = sum(max(0, s * (n - 1)) for s, n in zip(self.strides, self.shape))
        return (self.offset + lo, self.offset + hi + self.dtype.itemsize)

    def bytes_touched(self):
        """Exact byte positions of the elements (relative to the usable region)."""
        if 0 in self.shape:
            return np.zeros(0, np.int64)
        pos = np.full(self.shape, self.offset, np.int64)
        for axis, (s, n) in enumerate(zip(self.strides, self.shape)):
            idx = np.arange(n, dtype=np.int64).reshape([-1 if i == axis else 1
                                                        for i in range(len(self.shape))])
            pos = pos + idx * s
        return (pos.reshape(-1, 1) + np.arange(self.dtype.itemsize)).ravel()

    def same_view(self, other):
        return (self.buf, self.offset, self.shape, self.strides) == (
            other.buf, other.offset, other.shape, other.strides) and self.dtype == other.dtype

    def is_aligned(self):
        return self.offset % self.dtype.itemsize == 0

    def c_contiguous(self):
        """NumPy's rule: unit steps from the last axis, axes of length 1 ignored."""
        if 0 in self.shape:
            return True
        expect = self.dtype.itemsize
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expect:
                return False
            expect *= n
        return True


def _strides(shape, itemsize, layout):
    nd = len(shape)
    if layout == "F":
        s, acc = [], itemsize
        for n in shape:
            s.append(acc)
            acc *= max(n, 1)
        return tuple(s)
    grown = list(shape)
    if layout == "strided" and nd:
        grown[-1] = 2 * shape[-1]
    if layout == "padded" and nd:
        grown[-1] = shape[-1] + 3
    s, acc = [0] * nd, itemsize
    for d in range(nd - 1, -1, -1):
        s[d] = acc
        acc *= max(grown[d], 1)
    if layout == "strided" and nd:
        s[-1] = 2 * itemsize
    if layout == "reversed" and nd:
        s[0] = -s[0]
    if layout == "broadcast" and nd:
        s[0] = 0
    return tuple(s)


LAYOUTS = ["C", "F", "strided", "padded", "reversed", "broadcast", "unaligned"]


class Arena:
    """The memory of one case: buffers, the views on them, and what each view holds."""

    def __init__(self):
        self.bufs: list[np.ndarray] = []
        self.views: list[View] = []
        self.fill: list[tuple[View, np.ndarray]] = []

    def _buffer(self, nbytes):
        self.bufs.append(np.zeros(2 * GUARD + nbytes, np.uint8))
        return len(self.bufs) - 1

    def view(self, shape, dtype, values, *, layout="C", readonly=False, alias=None,
             shift=0, wrap="numpy"):
        """A new view holding `values`; with `alias`, on that view's memory shifted by
        `shift` elements (0: the same view) instead of a fresh buffer."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        if alias is not None:
            v = View(alias.buf, alias.offset + shift * alias.dtype.itemsize, alias.shape,
                     alias.strides, dtype, readonly, wrap)
        else:
            strides = _strides(shape, dtype.itemsize, layout)
            probe = View(0, 0, shape, strides, dtype)
            lo, hi = probe.extent()
            span = hi - lo + 1
            # room for shifted aliases of this view, and an odd start for "unaligned"
            buf = self._buffer(2 * span + 16)
            v = View(buf, -lo + (1 if layout == "unaligned" else 0), shape, strides, dtype,
                     readonly, wrap)
        self.views.append(v)
        self.fill.append((v, values))
        return v

    def realise(self):
        """Write every view's values (in creation order, so aliases overwrite) and return the
        buffers; guard and gap bytes hold a fixed pattern."""
        for b in self.bufs:
            b[...] = 0xA5
        for v, values in self.fill:
            if values is None:
                continue
            a = np.ndarray(v.shape, v.dtype, buffer=self.bufs[v.buf], offset=GUARD + v.offset,
                           strides=v.strides)
            with np.errstate(all="ignore"):
                a[...] = np.asarray(values).astype(v.dtype) if a.size else a
        return self.bufs


def values(draw, shape, profile, *, nonneg=False, specials=SPECIALS):
    """Array contents: `normal` O(1), `special` O(1) with IEEE specials sprinkled in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    if profile == "special" and x.size:
        k = draw(st.integers(1, max(1, x.size)))
        idx = rng.integers(0, x.size, k)
        x.flat[idx] = rng.choice(specials, k)
    if nonneg:
        x = np.abs(x)
    return x


def shapes(min_dims=0, max_dims=3, max_side=9):
    """Small shapes (0-d and empty included) and, rarely, one past the threads' cut-off."""
    small = st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(tuple)
    return st.one_of(small, small, small, st.just((70001,)))


def other_shape(draw, shape):
    """A shape different from `shape`."""
    new = draw(st.lists(st.integers(0, 5), max_size=3).map(tuple))
    return new if new != shape else shape + (2,)


def wrapped(a, how):
    if how == "memoryview":
        return memoryview(a)
    if how == "dlpack":
        return DLPackOnly(a)
    if how == "torch":
        import torch

        return torch.from_numpy(a)
    return a


def build(obj, bufs, wrap):
    """Replace every View in an argument structure by its array (wrapped for trainkern)."""
    if isinstance(obj, View):
        a = obj.array(bufs)
        return wrapped(a, obj.wrap) if wrap else a
    if isinstance(obj, list):
        return [build(o, bufs, wrap) for o in obj]
    if isinstance(obj, tuple):
        return tuple(build(o, bufs, wrap) for o in obj)
    if isinstance(obj, dict):
        return {k: build(o, bufs, wrap) for k, o in obj.items()}
    return obj


def all_views(obj):
    if isinstance(obj, View):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [v for o in obj for v in all_views(o)]
    if isinstance(obj, dict):
        return [v for o in obj.values() for v in all_views(o)]
    return []


@dataclasses.dataclass
class Role:
    """What a view argument may be: written in place, must be C-contiguous (and aligned),
    or must only be aligned; `same_view_ok`: views it may be exactly (in-place use)."""

    view: View
    written: bool = False
    contiguous: bool = False
    aligned: bool = False
    rows: bool = False  # a linear-layer output: unit column stride, rows not overlapping
    same_view_ok: tuple = ()
    dtypes: tuple = tuple(FLOATS)


def layout_ok(r: Role):
    v = r.view
    if v.dtype not in r.dtypes:
        return False
    if r.written and v.readonly:
        return False
    if (r.contiguous or r.aligned or r.rows) and not v.is_aligned():
        return False
    if r.contiguous and not v.c_contiguous():
        return False
    if r.rows and len(v.shape) == 2:
        m, n = v.shape
        col = v.strides[1] // v.dtype.itemsize
        if m and n > 1 and col != 1:
            return False
        if m > 1 and n and abs(v.strides[0]) < n * v.dtype.itemsize:
            return False
    return True


def overlap_ok(roles):
    """No written view shares a byte range with another, unless it is the very same view
    and that in-place use is allowed."""
    for i, a in enumerate(roles):
        for b in roles[i + 1:]:
            if not (a.written or b.written):
                continue
            (alo, ahi), (blo, bhi) = a.view.extent(), b.view.extent()
            if a.view.buf != b.view.buf or not (alo < bhi and blo < ahi):
                continue
            allowed = [v for v in a.same_view_ok + b.same_view_ok]
            if a.view.same_view(b.view) and any(v is a.view or v is b.view for v in allowed):
                continue
            return False
    return True
