"""Every pair of 64-bit hashes within Hamming distance t, exactly, without comparing all pairs (multi-index hashing).

The 64 bits are cut into m blocks; block k is searched with radius r_k: each hash looks up every value within r_k
bit flips of its block in a direct-address table of that block. If two hashes differ in at most t bits and
sum_k (r_k + 1) >= t + 1, some block differs in at most r_k bits (else the total would be at least
sum_k (r_k + 1) > t), so the pair is a candidate there: recall is exact, by pigeonhole (Norouzi, Punjani & Fleet,
"Fast Exact Search in Hamming Space with Multi-Index Hashing", TPAMI 2014). Candidates are verified on all 64 bits.
Each pair is reported once: only in the first block where it is a candidate, and only from the end whose block
value has the flip's highest bit clear. The block count m is picked by a cost model of table size, lookups and
expected bucket sizes, so small inputs use many narrow blocks and a million hashes use three wide ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

BITS = 64
MAX_BLOCK_BITS = 22  # a block's direct-address table has 2**bits + 1 int64 entries: 32 MiB at 22 bits
CANDIDATE_CHUNK = 1 << 22  # candidate pairs expanded at once, so a huge bucket cannot exhaust memory
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class Block:
    """Bits [shift, shift + bits) of the hash, searched with up to `radius` flipped bits."""

    shift: int
    bits: int
    radius: int

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def lookups(self) -> int:
        """Keys looked up per hash: all values within `radius` flips."""
        return sum(comb(self.bits, r) for r in range(self.radius + 1))


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (uint8 result)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    return _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)


def make_blocks(m: int, max_distance: int) -> tuple[Block, ...]:
    """m blocks of near-equal width whose radii sum to at least t + 1 - m (the exactness condition)."""
    if not 1 <= m <= BITS:
        raise ValueError(f"block count must be 1..64, got {m}")
    widths = [BITS // m + (1 if k < BITS % m else 0) for k in range(m)]
    spare = max(0, max_distance + 1 - m)
    radii = [spare // m + (1 if k < spare % m else 0) for k in range(m)]
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return tuple(Block(int(s), w, min(r, w)) for s, w, r in zip(shifts, widths, radii))


def check_blocks(blocks: Sequence[Block], max_distance: int) -> None:
    """Blocks must tile the 64 bits and satisfy sum (r_k + 1) >= t + 1, or pairs could be missed."""
    covered = sorted((b.shift, b.bits) for b in blocks)
    pos = 0
    for shift, bits in covered:
        if shift != pos or not 1 <= bits <= MAX_BLOCK_BITS:
            raise ValueError(f"blocks must tile bits 0..63 with 1..{MAX_BLOCK_BITS} bits each, got {list(blocks)}")
        pos += bits
    if pos != BITS:
        raise ValueError(f"blocks cover {pos} of 64 bits")
    if sum(b.radius + 1 for b in blocks) < max_distance + 1:
        raise ValueError(f"sum of (radius + 1) over blocks must be >= {max_distance + 1} for exact search")


def plan_blocks(n: int, max_distance: int) -> tuple[Block, ...]:
    """The block split with the lowest estimated time for n uniform hashes (constants measured on a 2-core x86 VM):
    per flip a fixed overhead, a probe per hash (dearer when the table is sparse, as most probes miss the cache)
    and a check per candidate (n/2 x n/2^bits expected)."""

    def cost(blocks: tuple[Block, ...]) -> float:
        total = 0.0
        for b in blocks:
            size = 1 << b.bits
            probe = 10e-9 + 50e-9 * min(1.0, size / (16.0 * max(n, 1)))
            total += 2e-9 * size + b.lookups() * (1e-4 + n / 2 * (probe + 30e-9 * n / size))
        return total

    options = [make_blocks(m, max_distance) for m in range(-(-BITS // MAX_BLOCK_BITS), 17)]
    return min(options, key=cost)


def flip_masks(bits: int, radius: int) -> list[int]:
    """Every value with at most `radius` of the low `bits` bits set, 0 first."""
    out = [0]
    for r in range(1, radius + 1):
        out.extend(sum(1 << b for b in combo) for combo in itertools.combinations(range(bits), r))
    return out


class _BlockTable:
    """One block's direct-address table, kept in key order: the hashes sorted by block key (`sorted_hashes`), their
    original indices (`order`) and bucket starts. Probing keys in sorted order makes every table and hash access
    run nearly sequentially (key ^ flip is monotone piecewise), which is what makes a pass fast."""

    def __init__(self, h: np.ndarray, blk: Block):
        index = np.int32 if len(h) < 2**31 else np.int64
        keys = ((h >> np.uint64(blk.shift)) & np.uint64(blk.mask)).astype(index)
        self.order = np.argsort(keys, kind="stable").astype(index)
        self.keys = keys[self.order]
        self.sorted_hashes = h[self.order]
        self.starts = np.zeros((1 << blk.bits) + 1, dtype=index)
        np.cumsum(np.bincount(keys, minlength=1 << blk.bits), out=self.starts[1:])
        self._by_clear_bit: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def queries(self, flip: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted positions, their keys) to probe with `flip`: all for 0, else those with its top bit clear, since
        the other end of each pair would find the same pair again."""
        if flip == 0:
            return np.arange(len(self.keys), dtype=self.keys.dtype), self.keys
        bit = flip.bit_length() - 1
        if bit not in self._by_clear_bit:
            pos = np.flatnonzero((self.keys & (1 << bit)) == 0).astype(self.keys.dtype)
            self._by_clear_bit[bit] = (pos, self.keys[pos])
        return self._by_clear_bit[bit]

    def candidates(self, flip: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(query, match) sorted positions whose block keys differ by exactly `flip`; each unordered pair once."""
        queries, keys = self.queries(flip)
        target = keys ^ keys.dtype.type(flip)
        lo = self.starts[target]
        count = self.starts[target + 1] - lo
        hit = np.flatnonzero(count)
        queries, lo, count = queries[hit], lo[hit], count[hit].astype(np.int64)
        ends = np.cumsum(count)
        first = 0
        while first < len(count):
            base = int(ends[first - 1]) if first else 0
            stop = max(first + 1, int(np.searchsorted(ends, base + CANDIDATE_CHUNK, side="right")))
            c = count[first:stop]
            offsets = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
            q = np.repeat(queries[first:stop], c)
            j = np.repeat(lo[first:stop], c) + offsets
            if flip == 0:  # same bucket: each pair appears as (a, b) and (b, a), and (a, a)
                keep = q < j
                q, j = q[keep], j[keep]
            yield q, j
            first = stop


def near_pairs(hashes: np.ndarray, max_distance: int,
               blocks: Sequence[Block] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j, distance) with i < j and popcount(h_i ^ h_j) <= max_distance, sorted by (i, j).

    Equal hashes pair with each other too: a group of c copies costs c² candidates, so callers with many exact
    copies should pass the distinct values (`first_wins` does).
    """
    h = np.ascontiguousarray(hashes, dtype=np.uint64).ravel()
    if not 0 <= max_distance <= BITS:
        raise ValueError(f"max_distance must be 0..64, got {max_distance}")
    blocks = tuple(blocks) if blocks else plan_blocks(len(h), max_distance)
    check_blocks(blocks, max_distance)
    found_i, found_j, found_d = [], [], []
    for k, blk in enumerate(blocks):
        table = _BlockTable(h, blk)
        for flip in flip_masks(blk.bits, blk.radius):
            for p, q in table.candidates(flip):
                x = table.sorted_hashes[p] ^ table.sorted_hashes[q]
                d = popcount64(x)
                ok = d <= max_distance
                for prev in blocks[:k]:  # a candidate in an earlier block was reported there
                    ok &= popcount64((x >> np.uint64(prev.shift)) & np.uint64(prev.mask)) > prev.radius
                i, j = table.order[p[ok]], table.order[q[ok]]
                found_i.append(np.minimum(i, j))
                found_j.append(np.maximum(i, j))
                found_d.append(d[ok])
        del table
    return _sorted_pairs(found_i, found_j, found_d)


def _sorted_pairs(i: list[np.ndarray], j: list[np.ndarray], d: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    if not i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    ii, jj, dd = np.concatenate(i).astype(np.int64), np.concatenate(j).astype(np.int64), np.concatenate(d)
    order = np.lexsort((jj, ii))
    return ii[order], jj[order], dd[order]


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same answer as `near_pairs` by comparing every pair (the baseline for tests and benchmarks)."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64).ravel()
    n = len(h)
    step = max(1, (1 << 22) // max(n, 1))
    found_i, found_j, found_d = [], [], []
    for a in range(0, n, step):
        b = min(n, a + step)
        d = popcount64(h[a:b, None] ^ h[None, a:])
        rows, cols = np.nonzero(d <= max_distance)
        rows += a
        cols += a
        keep = cols > rows
        found_i.append(rows[keep])
        found_j.append(cols[keep])
        found_d.append(d[rows[keep] - a, cols[keep] - a])
    return _sorted_pairs(found_i, found_j, found_d)


def near_pairs_between(queries: np.ndarray, base: np.ndarray, max_distance: int,
                       blocks: Sequence[Block] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j, distance) with popcount(queries_i ^ base_j) <= max_distance, sorted by (i, j): the new hashes of
    an append against the index of the kept ones, without comparing all pairs. The same pigeonhole as `near_pairs`
    (every pair within t is a candidate in some block); each block's base keys are sorted once and each query's
    flipped keys looked up by binary search, so the cost grows with the queries, times log of the base."""
    q = np.ascontiguousarray(queries, dtype=np.uint64).ravel()
    b = np.ascontiguousarray(base, dtype=np.uint64).ravel()
    if not 0 <= max_distance <= BITS:
        raise ValueError(f"max_distance must be 0..64, got {max_distance}")
    blocks = tuple(blocks) if blocks else plan_blocks(len(q) + len(b), max_distance)
    check_blocks(blocks, max_distance)
    found_i, found_j, found_d = [], [], []
    if not len(q) or not len(b):
        return _sorted_pairs(found_i, found_j, found_d)
    for k, blk in enumerate(blocks):
        base_keys = (b >> np.uint64(blk.shift)) & np.uint64(blk.mask)
        order = np.argsort(base_keys, kind="stable")
        sorted_keys = base_keys[order]
        query_keys = (q >> np.uint64(blk.shift)) & np.uint64(blk.mask)
        for flip in flip_masks(blk.bits, blk.radius):
            target = query_keys ^ np.uint64(flip)
            lo = np.searchsorted(sorted_keys, target, side="left")
            count = np.searchsorted(sorted_keys, target, side="right") - lo
            hit = np.flatnonzero(count)
            if not len(hit):
                continue
            c = count[hit]
            i = np.repeat(hit, c)
            j = order[np.repeat(lo[hit], c) + np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)]
            x = q[i] ^ b[j]
            d = popcount64(x)
            ok = d <= max_distance
            for prev in blocks[:k]:  # a candidate in an earlier block was reported there
                ok &= popcount64((x >> np.uint64(prev.shift)) & np.uint64(prev.mask)) > prev.radius
            found_i.append(i[ok])
            found_j.append(j[ok])
            found_d.append(d[ok])
    return _sorted_pairs(found_i, found_j, found_d)
