"""Numba kernels of the linker (private): candidate pairs and the exact assignment.

The assignment problem of one frame pair is

    minimise  sum over links d_ij**2  +  null_cost * (# unlinked sources)

(trackpy's objective, ``null_cost = search_range**2``; unlinked destinations
cost nothing). It is solved as a rectangular linear assignment: rows are the
sources, columns the destinations plus one private "unlinked" column per
source (cost ``null_cost``), so every row is always assignable. The solver is
the shortest augmenting path method (Jonker-Volgenant / Crouse) with
Dijkstra on the sparse candidate graph; each search only explores the
connected group of the row it starts from, so the frame is solved group by
group exactly, with no size limit. Rows whose only candidate has no other
candidate are decided directly.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _scan_pairs(sx, sy, dx, dy, sr2, order, skeys, dorder, dkeys, ny,
                count, fill, dst, cost, write):
    # Destinations sorted by cell key: for each column offset the wanted key
    # range moves monotonically, so two pointers replace binary searches.
    m = dorder.shape[0]
    n = skeys.shape[0]
    for ddx in range(-1, 2):
        a = 0
        b = 0
        for q in range(m):
            j = dorder[q]
            lo = dkeys[q] + ddx * ny - 1
            hi = lo + 3
            while a < n and skeys[a] < lo:
                a += 1
            if b < a:
                b = a
            while b < n and skeys[b] < hi:
                b += 1
            for p in range(a, b):
                i = order[p]
                ex = sx[i] - dx[j]
                ey = sy[i] - dy[j]
                d2 = ex * ex + ey * ey
                if d2 <= sr2:
                    if write:
                        dst[fill[i]] = j
                        cost[fill[i]] = d2
                        fill[i] += 1
                    else:
                        count[i] += 1


@njit(cache=True, nogil=True)
def _cell_keys(x, y, x0, y0, inv, ny, out):
    for i in range(x.shape[0]):
        out[i] = (np.int64((x[i] - x0) * inv) + 1) * ny + np.int64((y[i] - y0) * inv) + 1


@njit(cache=True, nogil=True)
def candidate_pairs(sx, sy, dx, dy, sr, x0, y0, ny):
    """All (source, destination) pairs with distance <= ``sr``.

    Uses square cells of side ``sr`` keyed by ``cx * ny + cy``; sources and
    destinations are sorted by key and merged, so time is O((n + m) log)
    and memory O(n + m) whatever the extent of the coordinates.

    Parameters
    ----------
    sx, sy : (n,) float64
        Source positions (pixels).
    dx, dy : (m,) float64
        Destination positions (pixels).
    sr : float
        Search range (pixels), > 0.
    x0, y0 : float
        Lower corner of the cell grid (<= every coordinate).
    ny : int
        Number of cell rows + 2 (the key stride).

    Returns
    -------
    ptr : (n + 1,) int64
        CSR row pointer: the candidates of source i are ``ptr[i]:ptr[i+1]``.
    dst : (E,) int64
        Destination index of each candidate.
    cost : (E,) float64
        Squared distance.
    """
    n = sx.shape[0]
    m = dx.shape[0]
    inv = 1.0 / sr
    keys = np.empty(n, dtype=np.int64)
    _cell_keys(sx, sy, x0, y0, inv, ny, keys)
    order = np.argsort(keys)
    skeys = keys[order]
    dk = np.empty(m, dtype=np.int64)
    _cell_keys(dx, dy, x0, y0, inv, ny, dk)
    dorder = np.argsort(dk)
    dkeys = dk[dorder]
    count = np.zeros(n, dtype=np.int64)
    fill = np.zeros(n, dtype=np.int64)
    dst = np.empty(0, dtype=np.int64)
    cost = np.empty(0, dtype=np.float64)
    sr2 = sr * sr
    _scan_pairs(sx, sy, dx, dy, sr2, order, skeys, dorder, dkeys, ny, count, fill, dst, cost, False)
    ptr = np.empty(n + 1, dtype=np.int64)
    ptr[0] = 0
    for i in range(n):
        ptr[i + 1] = ptr[i] + count[i]
        fill[i] = ptr[i]
    dst = np.empty(ptr[n], dtype=np.int64)
    cost = np.empty(ptr[n], dtype=np.float64)
    _scan_pairs(sx, sy, dx, dy, sr2, order, skeys, dorder, dkeys, ny, count, fill, dst, cost, True)
    return ptr, dst, cost


@njit(cache=True, nogil=True, inline="always")
def _less(d1, j1, d2, j2):
    return d1 < d2 or (d1 == d2 and j1 < j2)


@njit(cache=True, nogil=True)
def _heap_push(hd, hj, size, d, j):
    k = size
    hd[k] = d
    hj[k] = j
    while k > 0:
        p = (k - 1) >> 1
        if _less(hd[k], hj[k], hd[p], hj[p]):
            hd[k], hd[p] = hd[p], hd[k]
            hj[k], hj[p] = hj[p], hj[k]
            k = p
        else:
            break
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(hd, hj, size):
    size -= 1
    hd[0] = hd[size]
    hj[0] = hj[size]
    k = 0
    while True:
        lft = 2 * k + 1
        if lft >= size:
            break
        c = lft
        if lft + 1 < size and _less(hd[lft + 1], hj[lft + 1], hd[lft], hj[lft]):
            c = lft + 1
        if _less(hd[c], hj[c], hd[k], hj[k]):
            hd[k], hd[c] = hd[c], hd[k]
            hj[k], hj[c] = hj[c], hj[k]
            k = c
        else:
            break
    return size


@njit(cache=True, nogil=True)
def solve_assignment(n, m, ptr, dst, cost, null_cost, out_dst_of_src):
    """Exact minimum-cost links of one frame pair.

    Parameters
    ----------
    n, m : int
        Number of sources and destinations.
    ptr, dst, cost : CSR candidate graph from :func:`candidate_pairs`.
    null_cost : float
        Cost of leaving a source unlinked (``search_range**2``).
    out_dst_of_src : (n,) int64
        Filled with the destination linked to each source, -1 if unlinked.

    Returns
    -------
    total : float
        The minimum of the objective.
    """
    nc = m + n
    inf = np.inf
    deg = np.zeros(m, dtype=np.int64)
    for e in range(ptr[n]):
        deg[dst[e]] += 1
    u = np.zeros(n, dtype=np.float64)
    v = np.zeros(nc, dtype=np.float64)
    row4col = np.full(nc, -1, dtype=np.int64)
    col4row = np.full(n, -1, dtype=np.int64)
    total = 0.0
    hard = np.empty(n, dtype=np.int64)
    nhard = 0
    # trivial groups: 1-0 (lost) and isolated 1-1 pairs
    for i in range(n):
        k = ptr[i + 1] - ptr[i]
        if k == 0:
            col4row[i] = m + n - 1 - i
            row4col[m + n - 1 - i] = i
            u[i] = null_cost
            total += null_cost
        elif k == 1 and deg[dst[ptr[i]]] == 1:
            c = cost[ptr[i]]
            if c <= null_cost:
                j = dst[ptr[i]]
                u[i] = c
                total += c
            else:
                j = m + n - 1 - i
                u[i] = null_cost
                total += null_cost
            col4row[i] = j
            row4col[j] = i
        else:
            hard[nhard] = i
            nhard += 1
    if nhard == 0:
        for i in range(n):
            out_dst_of_src[i] = col4row[i] if col4row[i] < m else -1
        return total
    dist = np.full(nc, inf, dtype=np.float64)
    pred = np.full(nc, -1, dtype=np.int64)
    scanned = np.zeros(nc, dtype=np.bool_)
    touched = np.empty(nc, dtype=np.int64)
    rows_sr = np.empty(n, dtype=np.int64)
    cap = ptr[n] + n + 1
    hd = np.empty(cap, dtype=np.float64)
    hj = np.empty(cap, dtype=np.int64)
    for h in range(nhard):
        cur = hard[h]
        ntouched = 0
        nsr = 0
        hsize = 0
        minval = 0.0
        sink = -1
        i = cur
        while True:
            rows_sr[nsr] = i
            nsr += 1
            ui = u[i]
            for e in range(ptr[i], ptr[i + 1]):
                j = dst[e]
                if scanned[j]:
                    continue
                r = minval + cost[e] - ui - v[j]
                if r < dist[j]:
                    if dist[j] == inf:
                        touched[ntouched] = j
                        ntouched += 1
                    dist[j] = r
                    pred[j] = i
                    hsize = _heap_push(hd, hj, hsize, r, j)
            j = m + n - 1 - i
            if not scanned[j]:
                r = minval + null_cost - ui - v[j]
                if r < dist[j]:
                    if dist[j] == inf:
                        touched[ntouched] = j
                        ntouched += 1
                    dist[j] = r
                    pred[j] = i
                    hsize = _heap_push(hd, hj, hsize, r, j)
            # closest unscanned column (lazy deletion of stale entries)
            jbest = -1
            while hsize > 0:
                d = hd[0]
                j = hj[0]
                hsize = _heap_pop(hd, hj, hsize)
                if scanned[j] or d > dist[j]:
                    continue
                jbest = j
                break
            # jbest >= 0 always: the private column of every reached row exists
            scanned[jbest] = True
            minval = dist[jbest]
            if row4col[jbest] == -1:
                sink = jbest
                break
            i = row4col[jbest]
        # dual update
        u[cur] += minval
        for q in range(1, nsr):
            r_ = rows_sr[q]
            u[r_] += minval - dist[col4row[r_]]
        for q in range(ntouched):
            j = touched[q]
            if scanned[j]:
                v[j] -= minval - dist[j]
        # augment along the alternating path
        j = sink
        while True:
            i = pred[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur:
                break
        for q in range(ntouched):
            j = touched[q]
            dist[j] = inf
            scanned[j] = False
    total = 0.0
    for i in range(n):
        j = col4row[i]
        if j < m:
            out_dst_of_src[i] = j
        else:
            out_dst_of_src[i] = -1
    # objective of the final assignment
    for i in range(n):
        j = out_dst_of_src[i]
        if j < 0:
            total += null_cost
        else:
            for e in range(ptr[i], ptr[i + 1]):
                if dst[e] == j:
                    total += cost[e]
                    break
    return total
