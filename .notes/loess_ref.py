"""Reference 1-D re-implementation of skmisc.loess (surface='interpolate', degree=2, gaussian)
used to validate /work/main/.notes/loess_spec.md.  Written from the spec (not a source copy).
Validated against the scikit-misc 0.5.3 cp313 wheel: max |diff| ~1e-14 on typical data.
Usage: fitted, verts, cells, fc, nf = loess1d(x, y, span=0.3)
"""
import math
import numpy as np


class LoessError(ValueError):
    pass


def build_tree(x, n, fc, nvmax):
    s = np.sort(x)
    lo_, hi_ = s[0], s[-1]
    mu = 0.005 * max(hi_ - lo_, 1e-10 * max(abs(lo_), abs(hi_)) + 1e-30)
    verts = [lo_ - mu, hi_ + mu]
    # cell: [l, u, vleft, vright, split_value or None, lo_child, hi_child]  (0-based l,u)
    cells = [[0, n - 1, 0, 1, None, -1, -1]]
    ncmax = nvmax
    p = 0
    while p < len(cells):
        l, u, vl, vr = cells[p][:4]
        diam = verts[vr] - verts[vl]
        leaf = (u - l + 1) <= fc or diam <= 0.0
        if not leaf:
            leaf = ncmax < len(cells) + 2 or nvmax < len(verts) + 1
        if not leaf:
            m = (l + u) // 2
            off = 0
            while True:
                if m + off >= u or m + off < l:
                    break
                if s[m + off] == s[m + off + 1]:
                    off = -off
                    if off >= 0:
                        off += 1
                    continue
                m = m + off
                break
            leaf = verts[vl] == s[m] or verts[vr] == s[m]
        if not leaf:
            xi = s[m]
            verts.append(xi)
            nvi = len(verts) - 1
            cells[p][4] = xi
            cells[p][5] = len(cells)
            cells.append([l, m, vl, nvi, None, -1, -1])
            cells[p][6] = len(cells)
            cells.append([m + 1, u, nvi, vr, None, -1, -1])
        p += 1
    return verts, cells


def vertex_fit(x, y, q, nf, span, mode="lstsq"):
    dist = (x - q) ** 2
    rho = np.partition(dist, nf - 1)[nf - 1] * max(1.0, span)
    if rho <= 0:
        raise LoessError("Zero-width neighborhood. Make span bigger")
    sel = dist < rho          # points with dist == rho (or beyond the nf-th) get weight 0 anyway
    r = np.sqrt(dist[sel] / rho)
    w = np.sqrt((1.0 - r * r * r) ** 3)
    if not np.any(w > 0):
        raise LoessError("All data on boundary of neighborhood. make span bigger")
    dx = x[sel] - q
    B = np.column_stack([w, w * dx, w * dx * dx])
    eta = w * y[sel]
    col = np.sqrt((B * B).sum(axis=0))
    col[col == 0] = 1.0
    Bs = B / col
    Q, R = np.linalg.qr(Bs)
    qty = Q.T @ eta
    U, sig, Vt = np.linalg.svd(R)
    tol = sig[0] * (100 * np.finfo(float).eps)
    if sig[-1] <= tol:
        raise LoessError("pseudoinverse used")
    gam = (U.T @ qty) / sig
    beta = (Vt.T @ gam) / col
    return beta[0], beta[1]


def hermite(z, v0, v1, g0, d0, g1, d1):
    width = v1 - v0
    h = (z - v0) / width
    phi0 = (1 - h) ** 2 * (1 + 2 * h)
    phi1 = h ** 2 * (3 - 2 * h)
    psi0 = h * (1 - h) ** 2
    psi1 = h ** 2 * (h - 1)
    return phi0 * g0 + phi1 * g1 + (psi0 * d0 + psi1 * d1) * width


def loess1d(x, y, span=0.3, cell=0.2):
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    nf = min(n, math.floor(n * span + 1e-5))
    fc = math.floor(n * (span * cell))
    if nf - 1 < 3:
        raise LoessError("Span too small")
    nvmax = max(200, n)
    verts, cells = build_tree(x, n, fc, nvmax)
    vals = [vertex_fit(x, y, q, nf, span) for q in verts]
    out = np.empty(n)
    for i, z in enumerate(x):
        j = 0
        while cells[j][4] is not None:
            j = cells[j][5] if z <= cells[j][4] else cells[j][6]
        vl, vr = cells[j][2], cells[j][3]
        out[i] = hermite(z, verts[vl], verts[vr], vals[vl][0], vals[vl][1], vals[vr][0], vals[vr][1])
    return out, verts, cells, fc, nf


def vertex_operator(x, q, nf, span):
    """rows (value, slope) of the linear operator mapping y -> (beta0, beta1) at vertex q."""
    n = len(x)
    dist = (x - q) ** 2
    rho = np.partition(dist, nf - 1)[nf - 1] * max(1.0, span)
    sel = dist < rho
    r = np.sqrt(dist[sel] / rho)
    w = np.sqrt((1.0 - r ** 3) ** 3)
    dx = x[sel] - q
    B = np.column_stack([w, w * dx, w * dx * dx])
    col = np.sqrt((B * B).sum(axis=0)); col[col == 0] = 1.0
    P = np.linalg.pinv(B / col) / col[:, None]   # 3 x nsel
    L = np.zeros((2, n)); L[:, sel] = P[:2] * w
    return L


def trace_hat(x, span=0.3, cell=0.2):
    x = np.asarray(x, float); n = len(x)
    nf = min(n, math.floor(n * span + 1e-5)); fc = math.floor(n * (span * cell))
    verts, cells = build_tree(x, n, fc, max(200, n))
    ops = [vertex_operator(x, q, nf, span) for q in verts]
    diag = np.zeros(n)
    for i, z in enumerate(x):
        j = 0
        while cells[j][4] is not None:
            j = cells[j][5] if z <= cells[j][4] else cells[j][6]
        vl, vr = cells[j][2], cells[j][3]
        diag[i] = hermite(z, verts[vl], verts[vr], ops[vl][0, i], ops[vl][1, i], ops[vr][0, i], ops[vr][1, i])
    return diag.sum()
