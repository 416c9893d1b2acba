"""Numba kernels behind :class:`temstream.tracking.linking.Linker` (private).

One frame pair is linked in four steps, all compiled:

1. candidate pairs (source, destination) with d^2 <= search_range^2, found with a
   uniform grid (cells >= ``search_range``, about one destination per cell);
2. union-find over the pairs gives independent groups (trackpy's subnets);
3. groups with one edge are linked directly;
4. every other group is an exact rectangular assignment problem solved by a
   sparse shortest-augmenting-path (Jonker-Volgenant / Dijkstra with
   potentials) algorithm: each source is assigned either a destination
   (cost d^2) or its own "unlinked" column (cost search_range^2); destinations
   left over cost nothing. This is trackpy's objective without a size limit.

Ties are broken by index, deterministically: equal path lengths in the Dijkstra
search go to the lower column; destinations are numbered in row order and the
"unlinked" columns in reverse source order, so in the usual ties the
lower-index destination is taken and the lower-index source keeps its link
(two coincident sources and one destination: source 0 links; one source and
two coincident destinations: destination 0 continues the track).
"""

import numpy as np
from numba import njit

_INF = np.inf


@njit(cache=True, nogil=True)
def _grid_scan(sx, sy, dx, dy, sr, x0, y0, cell, ncx, ncy, order, cstart, fill, start,
               ps, pd, pc):
    """Count (fill=False) or write (fill=True) the pairs of every source."""
    sr2 = sr * sr
    for s in range(sx.shape[0]):
        fx = (sx[s] - x0) / cell
        fy = (sy[s] - y0) / cell
        if not (fx >= -1.0 and fy >= -1.0 and fx < ncx + 1.0 and fy < ncy + 1.0):
            continue
        cx = np.int64(np.floor(fx))
        cy = np.int64(np.floor(fy))
        lo_x = max(cx - 1, 0)
        hi_x = min(cx + 1, ncx - 1)
        k = start[s]
        for row in range(max(cy - 1, 0), min(cy + 1, ncy - 1) + 1):
            for q in range(cstart[row * ncx + lo_x], cstart[row * ncx + hi_x + 1]):
                d = order[q]
                ex = dx[d] - sx[s]
                ey = dy[d] - sy[s]
                d2 = ex * ex + ey * ey
                if d2 <= sr2:
                    if fill:
                        ps[k] = s
                        pd[k] = d
                        pc[k] = d2
                    k += 1
        if not fill:
            start[s] = k


@njit(cache=True, nogil=True)
def candidate_pairs(sx, sy, dx, dy, sr):
    """All (source, destination) pairs closer than ``sr``.

    A uniform grid over the destinations, cell size >= ``sr`` chosen so that there
    are about as many cells as destinations (so the memory stays O(D) whatever
    the coordinates), indexed by a counting sort; each source scans 3 x 3 cells.

    Parameters
    ----------
    sx, sy : (S,) float64
        Source positions (px), already moved by any predictor.
    dx, dy : (D,) float64
        Destination positions (px).
    sr : float
        Search range (px).

    Returns
    -------
    ps, pd : (E,) int64
        Source and destination index of each pair, grouped by source (ascending).
    pc : (E,) float64
        Squared distance of each pair (px^2).
    """
    ns = sx.shape[0]
    nd = dx.shape[0]
    if ns == 0 or nd == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    x0 = dx.min()
    y0 = dy.min()
    wx = dx.max() - x0
    wy = dy.max() - y0
    cell = max(sr, np.sqrt(wx * wy / nd))
    max_cells = 2 * nd + 64
    while True:
        ncx = np.int64(wx / cell) + 1
        ncy = np.int64(wy / cell) + 1
        if ncx * ncy <= max_cells:
            break
        cell *= 1.5
    cstart = np.zeros(ncx * ncy + 1, np.int64)
    keys = np.empty(nd, np.int64)
    for d in range(nd):
        kx = min(np.int64((dx[d] - x0) / cell), ncx - 1)
        ky = min(np.int64((dy[d] - y0) / cell), ncy - 1)
        keys[d] = ky * ncx + kx
        cstart[keys[d] + 1] += 1
    for c in range(ncx * ncy):
        cstart[c + 1] += cstart[c]
    fillp = cstart[:-1].copy()
    order = np.empty(nd, np.int64)
    for d in range(nd):
        order[fillp[keys[d]]] = d
        fillp[keys[d]] += 1
    start = np.zeros(ns, np.int64)
    ps = np.empty(0, np.int64)
    pd = np.empty(0, np.int64)
    pc = np.empty(0, np.float64)
    _grid_scan(sx, sy, dx, dy, sr, x0, y0, cell, ncx, ncy, order, cstart, False, start,
               ps, pd, pc)
    total = 0
    for s in range(ns):
        c = start[s]
        start[s] = total
        total += c
    ps = np.empty(total, np.int64)
    pd = np.empty(total, np.int64)
    pc = np.empty(total, np.float64)
    _grid_scan(sx, sy, dx, dy, sr, x0, y0, cell, ncx, ncy, order, cstart, True, start,
               ps, pd, pc)
    return ps, pd, pc


@njit(cache=True, nogil=True, inline="always")
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True, inline="always")
def _heap_push(hd, hj, n, d, j):
    i = n
    hd[i] = d
    hj[i] = j
    while i > 0:
        p = (i - 1) >> 1
        if hd[p] < hd[i] or (hd[p] == hd[i] and hj[p] <= hj[i]):
            break
        hd[p], hd[i] = hd[i], hd[p]
        hj[p], hj[i] = hj[i], hj[p]
        i = p
    return n + 1


@njit(cache=True, nogil=True, inline="always")
def _heap_pop(hd, hj, n):
    """Remove the root; returns the new size (the root was read before the call)."""
    n -= 1
    hd[0] = hd[n]
    hj[0] = hj[n]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= n:
            break
        b = a + 1
        m = a
        if b < n and (hd[b] < hd[a] or (hd[b] == hd[a] and hj[b] < hj[a])):
            m = b
        if hd[i] < hd[m] or (hd[i] == hd[m] and hj[i] <= hj[m]):
            break
        hd[m], hd[i] = hd[i], hd[m]
        hj[m], hj[i] = hj[i], hj[m]
        i = m
    return n


@njit(cache=True, nogil=True)
def sparse_assignment(nr, nc, indptr, idx, cost, col4row, ws_f, ws_i):
    """Minimum-cost assignment of every row to a distinct column over sparse edges.

    Parameters
    ----------
    nr, nc : int
        Rows and columns (nc >= nr); every row must have a feasible assignment.
    indptr : (nr + 1,) int64
        CSR row pointer.
    idx : (E,) int64
        Column of each edge.
    cost : (E,) float64
        Cost of each edge (>= 0).
    col4row : (nr,) int64
        Output: assigned column of each row.
    ws_f : (nr + 2 * nc + E,) float64
        Scratch.
    ws_i : (nr + 4 * nc + E,) int64
        Scratch.

    Returns
    -------
    ok : bool
        False if some row has no feasible column (cannot happen with null columns).
    """
    ne = indptr[nr]
    u = ws_f[:nr]
    v = ws_f[nr:nr + nc]
    shortest = ws_f[nr + nc:nr + 2 * nc]
    hd = ws_f[nr + 2 * nc:nr + 2 * nc + ne]
    row4col = ws_i[:nc]
    path = ws_i[nc:2 * nc]
    visited = ws_i[2 * nc:3 * nc]          # 1 when the column is in the tree (SC)
    touched = ws_i[3 * nc:4 * nc]
    sr_list = ws_i[4 * nc:4 * nc + nr]
    hj = ws_i[4 * nc + nr:4 * nc + nr + ne]
    for i in range(nr):
        u[i] = 0.0
        col4row[i] = -1
    for j in range(nc):
        v[j] = 0.0
        shortest[j] = _INF
        row4col[j] = -1
        visited[j] = 0
    for cur in range(nr):
        nsr = 0
        nt = 0
        hn = 0
        minval = 0.0
        i = cur
        sink = -1
        while True:
            sr_list[nsr] = i
            nsr += 1
            ui = u[i]
            for e in range(indptr[i], indptr[i + 1]):
                j = idx[e]
                if visited[j]:
                    continue
                r = minval + cost[e] - ui - v[j]
                if r < shortest[j]:
                    if shortest[j] == _INF:
                        touched[nt] = j
                        nt += 1
                    path[j] = i
                    shortest[j] = r
                    hn = _heap_push(hd, hj, hn, r, j)
            j = -1
            while hn > 0:
                dj = hd[0]
                jj = hj[0]
                hn = _heap_pop(hd, hj, hn)
                if visited[jj] == 0 and dj <= shortest[jj]:
                    j = jj
                    break
            if j < 0:
                return False
            minval = shortest[j]
            visited[j] = 1
            if row4col[j] < 0:
                sink = j
                break
            i = row4col[j]
        u[cur] += minval
        for k in range(1, nsr):
            i = sr_list[k]
            u[i] += minval - shortest[col4row[i]]
        for k in range(nt):
            j = touched[k]
            if visited[j]:
                v[j] -= minval - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur:
                break
        for k in range(nt):
            j = touched[k]
            shortest[j] = _INF
            visited[j] = 0
    return True


@njit(cache=True, nogil=True)
def solve_links(ns, nd, ps, pd, pc, null_cost, src_match, dst_match):
    """Exact links between S sources and D destinations given candidate pairs.

    Minimises sum(d^2 over links) + null_cost * (unlinked sources).

    Parameters
    ----------
    ns, nd : int
    ps, pd : (E,) int64
        Pairs grouped by source (as returned by :func:`candidate_pairs`).
    pc : (E,) float64
        Squared distances.
    null_cost : float
        search_range^2.
    src_match : (S,) int64
        Output: destination of each source, -1 if unlinked.
    dst_match : (D,) int64
        Output: source of each destination, -1 if new.

    Returns
    -------
    n_groups : int
        Number of groups that needed the assignment solver; ``largest`` below.
    largest : int
        Sources in the biggest such group.
    """
    for s in range(ns):
        src_match[s] = -1
    for d in range(nd):
        dst_match[d] = -1
    ne = ps.shape[0]
    if ne == 0:
        return 0, 0
    parent = np.arange(ns + nd)
    deg_s = np.zeros(ns, np.int64)
    deg_d = np.zeros(nd, np.int64)
    for e in range(ne):
        a = _find(parent, ps[e])
        b = _find(parent, ns + pd[e])
        if a != b:
            if a < b:
                parent[b] = a
            else:
                parent[a] = b
        deg_s[ps[e]] += 1
        deg_d[pd[e]] += 1
    # edge pointer per source (pairs are grouped by source)
    sptr = np.zeros(ns + 1, np.int64)
    for e in range(ne):
        sptr[ps[e] + 1] += 1
    for s in range(ns):
        sptr[s + 1] += sptr[s]
    # compact ids for groups that need the solver
    gid = np.full(ns + nd, -1, np.int64)
    ngroups = 0
    for e in range(ne):
        s = ps[e]
        d = pd[e]
        if deg_s[s] == 1 and deg_d[d] == 1:
            src_match[s] = d
            dst_match[d] = s
            continue
        r = _find(parent, s)
        if gid[r] < 0:
            gid[r] = ngroups
            ngroups += 1
    if ngroups == 0:
        return 0, 0
    g_ns = np.zeros(ngroups + 1, np.int64)
    g_nd = np.zeros(ngroups + 1, np.int64)
    g_ne = np.zeros(ngroups + 1, np.int64)
    loc = np.empty(ns + nd, np.int64)
    for s in range(ns):
        if deg_s[s] > 0:
            g = gid[_find(parent, s)]
            if g >= 0:
                loc[s] = g_ns[g + 1]
                g_ns[g + 1] += 1
                g_ne[g + 1] += deg_s[s]
    for d in range(nd):
        if deg_d[d] > 0:
            g = gid[_find(parent, ns + d)]
            if g >= 0:
                loc[ns + d] = g_nd[g + 1]
                g_nd[g + 1] += 1
    for g in range(ngroups):
        g_ns[g + 1] += g_ns[g]
        g_nd[g + 1] += g_nd[g]
        g_ne[g + 1] += g_ne[g]
    src_of = np.empty(g_ns[ngroups], np.int64)
    dst_of = np.empty(g_nd[ngroups], np.int64)
    for s in range(ns):
        if deg_s[s] > 0:
            g = gid[_find(parent, s)]
            if g >= 0:
                src_of[g_ns[g] + loc[s]] = s
    for d in range(nd):
        if deg_d[d] > 0:
            g = gid[_find(parent, ns + d)]
            if g >= 0:
                dst_of[g_nd[g] + loc[ns + d]] = d
    # workspaces sized for the largest group
    max_r = 0
    max_c = 0
    max_e = 0
    for g in range(ngroups):
        r = g_ns[g + 1] - g_ns[g]
        c = g_nd[g + 1] - g_nd[g] + r
        ee = g_ne[g + 1] - g_ne[g] + r
        max_r = max(max_r, r)
        max_c = max(max_c, c)
        max_e = max(max_e, ee)
    indptr = np.empty(max_r + 1, np.int64)
    idx = np.empty(max_e, np.int64)
    cost = np.empty(max_e, np.float64)
    col4row = np.empty(max_r, np.int64)
    ws_f = np.empty(max_r + 2 * max_c + max_e, np.float64)
    ws_i = np.empty(max_r + 4 * max_c + max_e, np.int64)
    for g in range(ngroups):
        nr = g_ns[g + 1] - g_ns[g]
        ndg = g_nd[g + 1] - g_nd[g]
        k = 0
        indptr[0] = 0
        for r in range(nr):
            s = src_of[g_ns[g] + r]
            for e in range(sptr[s], sptr[s + 1]):
                idx[k] = loc[ns + pd[e]]
                cost[k] = pc[e]
                k += 1
            idx[k] = ndg + (nr - 1 - r)        # later sources' nulls first: see ties
            cost[k] = null_cost
            k += 1
            indptr[r + 1] = k
        sparse_assignment(nr, ndg + nr, indptr, idx, cost, col4row, ws_f, ws_i)
        for r in range(nr):
            c = col4row[r]
            if c < ndg:
                s = src_of[g_ns[g] + r]
                d = dst_of[g_nd[g] + c]
                src_match[s] = d
                dst_match[d] = s
    return ngroups, max_r


@njit(cache=True, nogil=True)
def link_step(tx, ty, tvx, tvy, tid, tlast, tang, frame, memory, use_velocity,
              dx, dy, dang, has_angle, period, sr, next_id,
              out_ids, out_unw, nx, ny, nvx, nvy, nid, nlast, nang):
    """Link one frame to the tracker state and write the next state.

    Parameters
    ----------
    tx, ty, tvx, tvy, tang : (T,) float64
        Track state: last position (px), velocity (px/frame), last unwrapped angle (rad).
    tid, tlast : (T,) int64
        Track id and frame index of its last detection.
    frame : int
        Index of this frame (> every ``tlast``).
    memory : int
        Frames a track may be missing and still be linked.
    use_velocity : bool
        Predict sources at last position + velocity * gap.
    dx, dy, dang : (D,) float64
        Detections of this frame (``dang`` ignored unless ``has_angle``).
    period : float
        Angle period 2 pi / n_fold (rad).
    sr : float
        Search range (px).
    next_id : int
        First unused track id.
    out_ids : (D,) int64
        Output track id per detection.
    out_unw : (D,) float64
        Output unwrapped angle per detection.
    nx, ny, nvx, nvy, nid, nlast, nang : (D + T,)
        Output next state; the first ``n`` entries are valid.

    Returns
    -------
    n : int
        Size of the next state.
    next_id : int
        Updated first unused track id.
    n_groups, largest : int
        Groups solved by assignment, and the largest one (sources).
    """
    nt = tx.shape[0]
    nd = dx.shape[0]
    act = np.empty(nt, np.int64)
    na = 0
    for t in range(nt):
        if frame - tlast[t] <= memory + 1:
            act[na] = t
            na += 1
    sx = np.empty(na, np.float64)
    sy = np.empty(na, np.float64)
    for a in range(na):
        t = act[a]
        sx[a] = tx[t]
        sy[a] = ty[t]
        if use_velocity:
            gap = frame - tlast[t]
            sx[a] += tvx[t] * gap
            sy[a] += tvy[t] * gap
    ps, pd, pc = candidate_pairs(sx, sy, dx, dy, sr)
    src_match = np.empty(na, np.int64)
    dst_match = np.empty(nd, np.int64)
    n_groups, largest = solve_links(na, nd, ps, pd, pc, sr * sr, src_match, dst_match)
    half = 0.5 * period
    for d in range(nd):
        a = dst_match[d]
        nx[d] = dx[d]
        ny[d] = dy[d]
        nlast[d] = frame
        if a >= 0:
            t = act[a]
            gap = frame - tlast[t]
            out_ids[d] = tid[t]
            nvx[d] = (dx[d] - tx[t]) / gap
            nvy[d] = (dy[d] - ty[t]) / gap
            if has_angle:
                th = dang[d]
                prev = tang[t]
                if th != th:
                    out_unw[d] = np.nan
                    nang[d] = prev
                elif prev != prev:
                    out_unw[d] = th
                    nang[d] = th
                else:
                    w = (th - prev + half) % period - half
                    out_unw[d] = prev + w
                    nang[d] = prev + w
            else:
                nang[d] = np.nan
        else:
            out_ids[d] = next_id
            next_id += 1
            nvx[d] = 0.0
            nvy[d] = 0.0
            if has_angle:
                out_unw[d] = dang[d]
                nang[d] = dang[d]
            else:
                nang[d] = np.nan
        nid[d] = out_ids[d]
    n = nd
    for a in range(na):
        if src_match[a] < 0:
            t = act[a]
            if frame - tlast[t] <= memory:
                nx[n] = tx[t]
                ny[n] = ty[t]
                nvx[n] = tvx[t]
                nvy[n] = tvy[t]
                nid[n] = tid[t]
                nlast[n] = tlast[t]
                nang[n] = tang[t]
                n += 1
    return n, next_id, n_groups, largest
