# Usage: PYTHONPATH=<unzipped scikit-misc wheel dir> /work/main/.venv/bin/python loess_compare.py
import numpy as np, sys
sys.path.insert(0, "/work/main/.notes")
from skmisc.loess import loess
from loess_ref import loess1d

def sk(x, y):
    m = loess(x, y, span=0.3, degree=2); m.fit(); return m.outputs.fitted_values

rng = np.random.default_rng(0)
def scdata(ngenes, ncells):
    mu = np.exp(rng.normal(-1.5, 1.8, ngenes))
    counts_tot = rng.poisson(mu * ncells)
    # simulate var from NB-ish
    theta = 5.0
    var = mu + mu**2 / theta
    mean = counts_tot / ncells
    v = var * rng.chisquare(ncells - 1, ngenes) / (ncells - 1)
    keep = (v > 0) & (mean > 0)
    return np.log10(mean[keep]), np.log10(v[keep])

cases = []
for (g, c) in [(30, 100), (60, 50), (400, 300), (499, 200), (500, 200), (2000, 500), (5000, 1000), (12000, 2000)]:
    cases.append(("sc%d_%d" % (g, c),) + scdata(g, c))
xx = np.linspace(0, 1, 50); cases.append(("sin50", xx, np.sin(6 * xx)))
xx = rng.uniform(-3, 2, 3000); cases.append(("unif3000", xx, xx**2 + rng.normal(0, .3, 3000)))
xx = np.round(rng.normal(0, 1, 2000), 1); cases.append(("ties2000", xx, np.cos(xx) + rng.normal(0, .2, 2000)))
xx = np.round(rng.normal(0, 1, 300), 1); cases.append(("ties300", xx, np.cos(xx) + rng.normal(0, .2, 300)))
for name, x, y in cases:
    try:
        a = sk(x, y)
    except Exception as e:
        a = "ERR " + str(e)[:60]
    try:
        b, verts, cells, fc, nf = loess1d(x, y)
    except Exception as e:
        b = "ERR " + str(e)[:60]; verts = []
    if isinstance(a, str) or isinstance(b, str):
        print(name, len(x), a if isinstance(a, str) else "ok", b if isinstance(b, str) else "ok")
        continue
    d = np.abs(a - b)
    print(f"{name:12s} n={len(x):6d} nverts={len(verts):4d} maxabs={d.max():.3e} maxrel={(d/np.maximum(np.abs(a),1e-300)).max():.3e}")
