//! Plots of a file scanpy ships (pbmc68k_reduced): the colours stored beside a column are the
//! ones drawn, a step's palette overrides them, SVG and PDF are written as such, and `check`
//! refuses what a run would fail on.

use engine_tests::{engine_code, engine_ok, fixtures, python_ok, scratch};
use std::path::Path;

fn pipeline(dir: &Path, name: &str, src: &Path, plots: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n{plots}",
            src.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn stored_colours_are_drawn_and_every_format_is_written() {
    let dir = scratch("plots");
    // pbmc68k_reduced with louvain's stored colours replaced by ones no default palette has.
    let src = dir.join("pbmc.h5ad");
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_h5ad('{}')\n\
         n = len(a.obs['louvain'].cat.categories)\n\
         a.uns['louvain_colors'] = np.array(['#ff00ff'] * (n - 1) + ['#00ff00'], dtype=object)\n\
         a.write_h5ad('{}')\n",
        fixtures().join("pbmc68k_reduced.h5ad").display(),
        src.display()
    ));
    let p = pipeline(
        &dir,
        "p.yaml",
        &src,
        &format!(
            "  - {{id: stored, op: plot, input: data, basis: umap, color: louvain, path: '{0}/stored.png'}}\n\
             \x20 - {{id: given, op: plot, input: data, basis: umap, color: louvain, palette: '#0000ff', legend_loc: on data, path: '{0}/given.png'}}\n\
             \x20 - {{id: vector, op: plot, input: data, basis: umap, color: n_counts, path: '{0}/counts.svg'}}\n\
             \x20 - {{id: paper, op: plot, input: data, basis: pca, color: bulk_labels, title: 'PBMC 68k', path: '{0}/pca.pdf'}}\n",
            dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    // Pixel counts of the stored colours, of tab10's first colour and of the given palette.
    python_ok(&format!(
        "from PIL import Image\n\
         def count(path, rgb):\n\
         \x20   return sum(1 for p in Image.open(path).convert('RGB').getdata() if p == rgb)\n\
         d = '{}'\n\
         stored = d + '/stored.png'\n\
         assert count(stored, (255, 0, 255)) > 2000, count(stored, (255, 0, 255))\n\
         assert count(stored, (0, 255, 0)) > 20, count(stored, (0, 255, 0))\n\
         assert count(stored, (31, 119, 180)) == 0\n\
         given = d + '/given.png'\n\
         assert count(given, (0, 0, 255)) > 2000 and count(given, (255, 0, 255)) == 0\n",
        dir.display()
    ));
    let svg = std::fs::read_to_string(dir.join("counts.svg")).unwrap();
    assert!(
        svg.starts_with("<svg width=\"") && svg.contains("pt\" height=\""),
        "{}",
        &svg[..80]
    );
    assert!(
        svg.contains(">\nn_counts\n</text>"),
        "the colour key is the title"
    );
    let pdf = std::fs::read(dir.join("pca.pdf")).unwrap();
    assert_eq!(&pdf[..5], b"%PDF-");
    // The title's glyphs come from the embedded font, subset into the PDF.
    assert!(pdf.windows(7).any(|w| w == b"DejaVuS"), "no embedded font");
}

#[test]
fn check_refuses_what_a_plot_would_fail_on() {
    let dir = scratch("plots-check");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    for (plot, want) in [
        ("path: x.jpg", "`path` must end in .png, .svg or .pdf"),
        (
            "path: x.png, palette: '#12345'",
            "`palette`: \"#12345\" is not a colour",
        ),
        ("path: x.png, dpi: 5", "`dpi` must be between 10 and 1200"),
        ("path: x.png, size: -1.0", "`size` must be a positive area"),
        ("path: x.png, legend_loc: left", "legend_loc"),
    ] {
        let p = pipeline(
            &dir,
            "p.yaml",
            &src,
            &format!(
                "  - {{id: fig, op: plot, input: data, basis: umap, color: louvain, {plot}}}\n"
            ),
        );
        let (code, err) = engine_code(&["check", p.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{plot}: {err}");
        assert!(
            err.contains(want) && err.contains("p.yaml:4:"),
            "{plot}: {err}"
        );
    }
}

/// The dot plot's dots are scanpy's: on pbmc68k_reduced (its raw log-normalised values and
/// the marker genes scanpy stored), the top genes per group under brackets, and a gene list
/// on X with `standard_scale`, a cutoff and means over expressing cells. Each dot's area and
/// colour are checked against the sizes and colours matplotlib holds in scanpy's figure.
#[test]
fn dotplot_draws_scanpys_dots() {
    let dir = scratch("plots-dotplot");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = dir.join("dots.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n\
             \x20 - {{id: data, op: read, path: '{0}'}}\n\
             \x20 - {{id: lognorm, op: read, path: '{0}', use_raw: true}}\n\
             \x20 - {{id: ranked, op: dotplot, input: lognorm, groupby: bulk_labels, n_genes: 3, path: '{1}/ranked.svg'}}\n\
             \x20 - {{id: listed, op: dotplot, input: data, groupby: bulk_labels, var_names: [CD79A, LYZ, NKG7, CST3, HLA-DRA],\n\
             \x20     standard_scale: var, expression_cutoff: 0.5, mean_only_expressed: true, path: '{1}/listed.svg'}}\n",
            src.display(),
            dir.display()
        ),
    )
    .unwrap();
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "import re, math, matplotlib\n\
         matplotlib.use('Agg')\n\
         import scanpy as sc\n\
         a = sc.read_h5ad('{src}')\n\
         def dots(fig):\n\
         \x20   fig.make_figure()\n\
         \x20   c = fig.ax_dict['mainplot_ax'].collections[0]\n\
         \x20   sizes, colours = c.get_sizes(), c.get_facecolors()\n\
         \x20   return [(s, tuple(round(255 * v) for v in colours[i][:3])) for i, s in enumerate(sizes) if s > 0]\n\
         def drawn(path):\n\
         \x20   svg = open(path).read()\n\
         \x20   out = []\n\
         \x20   for r, fill in re.findall(r'<circle [^>]*r=\"([0-9.]+)\"[^>]*fill=\"#([0-9A-F]{{6}})\" stroke=\"none\"', svg):\n\
         \x20       rgb = tuple(int(fill[i:i + 2], 16) for i in (0, 2, 4))\n\
         \x20       if rgb != (128, 128, 128):\n\
         \x20           out.append((float(r), rgb))\n\
         \x20   return out, svg\n\
         def compare(want, path, labels):\n\
         \x20   got, svg = drawn(path)\n\
         \x20   assert want\n\
         \x20   assert len(got) == len(want), (len(got), len(want))\n\
         \x20   for (r, rgb), (s, colour) in zip(got, want):\n\
         \x20       # SVG units are a quarter point; a marker 'o' of area s is sqrt(s) points wide.\n\
         \x20       assert abs(r - 2 * math.sqrt(s)) <= 1.0, (r, s)\n\
         \x20       assert max(abs(x - y) for x, y in zip(rgb, colour)) <= 1, (rgb, colour)\n\
         \x20   for label in labels:\n\
         \x20       assert '>\\n' + label + '\\n</text>' in svg, label\n\
         d = '{dir}'\n\
         # scanpy's default here: groups ordered by its dendrogram of the groups' mean X_pca.\n\
         ranked = sc.pl.rank_genes_groups_dotplot(a, n_genes=3, return_fig=True, show=False)\n\
         compare(dots(ranked), d + '/ranked.svg', list(a.uns['rank_genes_groups']['names'][0]) + ['CD19+ B'])\n\
         order = list(a.uns['dendrogram_bulk_labels']['categories_ordered'])\n\
         svg = open(d + '/ranked.svg').read()\n\
         at = [svg.index('>\\n' + g + '\\n</text>') for g in order]\n\
         assert at == sorted(at), order\n\
         genes = ['CD79A', 'LYZ', 'NKG7', 'CST3', 'HLA-DRA']\n\
         listed = sc.pl.dotplot(a, genes, groupby='bulk_labels', use_raw=False, standard_scale='var',\n\
         \x20   expression_cutoff=0.5, mean_only_expressed=True, return_fig=True, show=False)\n\
         compare(dots(listed), d + '/listed.svg', genes)\n",
        src = src.display(),
        dir = dir.display()
    ));
    // What `check` refuses before any data is read.
    for (args, want) in [
        (
            "var_names: [CD79A], n_genes: 3",
            "`var_names` and `n_genes` are mutually exclusive",
        ),
        ("var_names: [CD79A]", "`groupby` is needed"),
        (
            "groupby: louvain, n_genes: 0",
            "`n_genes` must be at least 1",
        ),
        (
            "groupby: n_genes, var_names: [CD79A]",
            "groups need a categorical column",
        ),
        ("groupby: louvain, key: nope", "uns['nope']"),
        (
            "groupby: louvain, var_names: [CD79A], groups: [B]",
            "leave it out",
        ),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!("  - {{id: dots, op: dotplot, input: data, {args}, path: d.png}}\n"),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// scanpy's stacked violins of pbmc68k_reduced, violin by violin: the ranking's top genes
/// (the groups read from the file's `uns['rank_genes_groups']['params']`, rows in its
/// dendrogram's order) and a gene list scaled per gene. Each outline's points where
/// seaborn's are (one linear map per row of violins from data to the image) and each face
/// the colour scanpy gives the group's median. As for `violin`, scanpy 1.12 with seaborn 0.13
/// narrows each violin to a twentieth of its slot unless given `dodge=False`; we draw them
/// full width, as scanpy's documentation shows.
#[test]
fn stacked_violins_are_scanpys() {
    let dir = scratch("plots-stacked-violin");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = pipeline(
        &dir,
        "stacked.yaml",
        &src,
        &format!(
            "  - {{id: lognorm, op: read, path: '{0}', use_raw: true}}\n\
             \x20 - {{id: ranked, op: stacked_violin, input: data, raw: lognorm, n_genes: 2, path: '{1}/ranked.svg'}}\n\
             \x20 - {{id: listed, op: stacked_violin, input: data, raw: lognorm, groupby: bulk_labels, var_names: [CST3, NKG7, MS4A1],\n\
             \x20     standard_scale: var, path: '{1}/listed.svg'}}\n",
            src.display(),
            dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "import re, numpy as np, matplotlib\n\
         matplotlib.use('Agg')\n\
         import scanpy as sc\n\
         a = sc.read_h5ad('{src}')\n\
         def compare(axes, path):\n\
         \x20   fig = axes['mainplot_ax'].figure\n\
         \x20   rows = [ax for ax in fig.axes if ax not in axes.values()]\n\
         \x20   svg = open(path).read()\n\
         \x20   ours = [(p, f) for f, p in re.findall(r'<polygon [^>]*fill=\"#([0-9A-F]{{6}})\"[^>]*points=\"([^\"]*)\"', svg)]\n\
         \x20   theirs = [(ax, c) for ax in rows for c in ax.collections]\n\
         \x20   assert len(ours) == len(theirs) > 0, (len(ours), len(theirs))\n\
         \x20   k = 0\n\
         \x20   for ax in rows:\n\
         \x20       mine = ours[k:k + len(ax.collections)]\n\
         \x20       k += len(ax.collections)\n\
         \x20       if not mine:\n\
         \x20           continue\n\
         \x20       o = np.concatenate([np.array([[float(c) for c in p.split(',')] for p in pts.split()]) for pts, _ in mine])\n\
         \x20       # seaborn's path: a start, one outline up the 100 support values, the other\n\
         \x20       # down, a close; ours is the two outlines.\n\
         \x20       t = np.concatenate([np.r_[v[1:101], v[102:202]] for v in (c.get_paths()[0].vertices for c in ax.collections)])\n\
         \x20       assert o.shape == t.shape, (o.shape, t.shape)\n\
         \x20       for axis, sign in ((0, 1), (1, -1)):\n\
         \x20           A = np.c_[np.ones(len(t)), t[:, axis]]\n\
         \x20           coef = np.linalg.lstsq(A, o[:, axis], rcond=None)[0]\n\
         \x20           err = np.abs(A @ coef - o[:, axis]).max()\n\
         \x20           assert err <= 1.5 and np.sign(coef[1]) == sign, (axis, err, coef)\n\
         \x20       for (_, fill), c in zip(mine, ax.collections):\n\
         \x20           got = [int(fill[i:i + 2], 16) for i in (0, 2, 4)]\n\
         \x20           want = [round(255 * v) for v in c.get_facecolor()[0][:3]]\n\
         \x20           assert max(abs(x - y) for x, y in zip(got, want)) <= 1, (got, want)\n\
         \x20   labels = [t.get_text() for t in axes['mainplot_ax'].get_yticklabels()]\n\
         \x20   at = [svg.index('>\\n' + g + '\\n</text>') for g in labels]\n\
         \x20   assert at == sorted(at), labels\n\
         d = '{dir}'\n\
         compare(sc.pl.rank_genes_groups_stacked_violin(a, n_genes=2, dodge=False, show=False), d + '/ranked.svg')\n\
         compare(sc.pl.stacked_violin(a, ['CST3', 'NKG7', 'MS4A1'], groupby='bulk_labels', standard_scale='var', dodge=False, show=False), d + '/listed.svg')\n",
        src = src.display(),
        dir = dir.display()
    ));
    // The choices it shares with the dot plot are refused by `check` as there.
    for (args, want) in [
        (
            "groupby: louvain, n_genes: 0",
            "`n_genes` must be at least 1",
        ),
        ("groupby: louvain, var_names: [CST33]", "gene `CST33`"),
        ("var_names: [CST3]", "`groupby` is needed"),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!("  - {{id: sv, op: stacked_violin, input: data, {args}, path: v.png}}\n"),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// scanpy's marker-gene panels from the ranking scanpy stored in pbmc68k_reduced: the same
/// titles, the same names in each panel, each name placed at its rank and score (a linear
/// map of matplotlib's text positions, one per row of panels sharing the score axis).
#[test]
fn rank_genes_groups_panels_place_scanpys_names() {
    let dir = scratch("plots-panels");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = pipeline(
        &dir,
        "panels.yaml",
        &src,
        &format!(
            "  - {{id: panels, op: rank_genes_groups_plot, input: data, n_genes: 12, ncols: 3, path: '{}/panels.svg'}}\n",
            dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "import re, numpy as np, matplotlib\n\
         matplotlib.use('Agg')\n\
         import scanpy as sc\n\
         a = sc.read_h5ad('{src}')\n\
         axs = sc.pl.rank_genes_groups(a, n_genes=12, ncols=3, show=False)\n\
         want = [(ax.get_title(), [(t.get_text(), t.get_position()) for t in ax.texts]) for ax in axs]\n\
         svg = open('{dir}/panels.svg').read()\n\
         got, genes = [], []\n\
         for x, y, rot, text in re.findall(r'<text x=\"(-?\\d+)\" y=\"(-?\\d+)\"[^>]*?( transform=\"rotate\\(270[^\"]*\")?>\\n(.*)\\n</text>', svg):\n\
         \x20   if ' vs. ' in text:\n\
         \x20       got.append((text, genes)); genes = []\n\
         \x20   elif rot and text != 'score':\n\
         \x20       genes.append((text, (float(x), float(y))))\n\
         assert [t for t, _ in got] == [t for t, _ in want], ([t for t, _ in got], [t for t, _ in want])\n\
         for (title, g), (_, w) in zip(got, want):\n\
         \x20   assert [n for n, _ in g] == [n for n, _ in w], title\n\
         def linear(ours, theirs):\n\
         \x20   A = np.c_[np.ones(len(theirs)), theirs]\n\
         \x20   coef = np.linalg.lstsq(A, ours, rcond=None)[0]\n\
         \x20   return np.abs(A @ coef - ours).max(), coef[1]\n\
         for row in range(0, len(got), 3):\n\
         \x20   ours = np.array([p[1] for _, g in got[row:row + 3] for _, p in g])\n\
         \x20   theirs = np.array([p[1] for _, w in want[row:row + 3] for _, p in w])\n\
         \x20   err, slope = linear(ours, theirs)\n\
         \x20   assert err <= 1.0 and slope < 0, (row, err, slope)\n\
         for (_, g), (_, w) in zip(got, want):\n\
         \x20   err, slope = linear(np.array([p[0] for _, p in g]), np.array([p[0] for _, p in w]))\n\
         \x20   assert err <= 1.0 and slope > 0, (err, slope)\n",
        src = src.display(),
        dir = dir.display()
    ));
    for (args, want) in [
        ("n_genes: 0", "`n_genes` must be positive"),
        ("key: nope", "uns['nope']"),
        ("ncols: 0", "`ncols` must be positive"),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!(
                "  - {{id: p, op: rank_genes_groups_plot, input: data, {args}, path: p.pdf}}\n"
            ),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// scanpy's `rank_genes_groups_violin` of pbmc68k_reduced, half violin by half violin: for
/// the ranking stored in the file (each group against the rest) and for one of ours against a
/// reference group, every half's extent and the centre of its width where seaborn's are (one linear map
/// per axis from data to the image: cut two bandwidths past the values, each half as wide as
/// the other), and the same title, genes and axis names; one file per group.
#[test]
fn rank_genes_groups_violins_are_scanpys() {
    let dir = scratch("plots-rank-violin");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = pipeline(
        &dir,
        "rgv.yaml",
        &src,
        &format!(
            "  - {{id: lognorm, op: read, path: '{src}', use_raw: true}}\n\
             \x20 - {{id: stored, op: rank_genes_groups_violin, input: data, raw: lognorm, n_genes: 3, groups: [CD14+ Monocyte, CD4+/CD25 T Reg], path: '{dir}/stored.svg'}}\n\
             \x20 - {{id: ref, op: rank_genes_groups, input: data, groupby: bulk_labels, groups: [CD14+ Monocyte], reference: CD19+ B, method: wilcoxon, raw: lognorm}}\n\
             \x20 - {{id: vs, op: rank_genes_groups_violin, input: ref, raw: lognorm, gene_names: [FTL, CST3, NKG7, MS4A1], path: '{dir}/vs.svg'}}\n",
            src = src.display(),
            dir = dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    for f in [
        "stored_CD14+ Monocyte.svg",
        "stored_CD4+_CD25 T Reg.svg",
        "vs_CD14+ Monocyte.svg",
    ] {
        assert!(dir.join(f).exists(), "no {f}");
    }
    python_ok(&format!(
        "import re, numpy as np, matplotlib\n\
         matplotlib.use('Agg')\n\
         import scanpy as sc\n\
         a = sc.read_h5ad('{src}')\n\
         def shapes(polys):\n\
         \x20   out = []\n\
         \x20   for v in polys:\n\
         \x20       # The straight edge (the gene's centre) is the x most vertices share.\n\
         \x20       xs, n = np.unique(np.round(v[:, 0], 3), return_counts=True)\n\
         \x20       w = np.abs(v[:, 0] - xs[np.argmax(n)])\n\
         \x20       out.append([v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max(), (w * v[:, 1]).sum() / w.sum()])\n\
         \x20   return np.array(sorted(out, key=lambda r: r[0] + r[1]))\n\
         def compare(ax, path, title, genes):\n\
         \x20   svg = open(path).read()\n\
         \x20   ours = [np.array([[float(c) for c in p.split(',')] for p in pts.split()]) for pts in re.findall(r'<polygon [^>]*points=\"([^\"]*)\"', svg)]\n\
         \x20   theirs = [c.get_paths()[0].vertices for c in ax.collections if len(c.get_paths()) == 1 and len(c.get_paths()[0].vertices) == 203]\n\
         \x20   assert len(ours) == len(theirs) == 2 * len(genes), (path, len(ours), len(theirs))\n\
         \x20   # seaborn's path: a start, the outer outline up the 100 support values, the inner one\n\
         \x20   # down, a close; ours is the two outlines.\n\
         \x20   o, t = shapes(ours), shapes([np.r_[v[1:101], v[102:202]] for v in theirs])\n\
         \x20   # The image's y grows downwards: its lowest point is the data's highest.\n\
         \x20   for tcols, ocols, sign in (((0, 1), (0, 1), 1), ((2, 3, 4), (3, 2, 4), -1)):\n\
         \x20       tv, ov = t[:, tcols].ravel(), o[:, ocols].ravel()\n\
         \x20       A = np.c_[np.ones(len(tv)), tv]\n\
         \x20       coef = np.linalg.lstsq(A, ov, rcond=None)[0]\n\
         \x20       err = np.abs(A @ coef - ov).max()\n\
         \x20       # Vertices sit on whole units (a quarter point): a thin half's centre moves by more.\n\
         \x20       assert err <= 3.0 and np.sign(coef[1]) == sign, (path, tcols, err, coef)\n\
         \x20   texts = [x.strip() for x in re.findall(r'<text[^>]*>([^<]*)</text>', svg)]\n\
         \x20   assert title in texts and 'genes' in texts and 'expression' in texts, texts\n\
         \x20   assert [x for x in texts if x in genes] == genes, (texts, genes)\n\
         \x20   assert ax.get_title() == title and [l.get_text() for l in ax.get_xticklabels()] == genes\n\
         for g, f in (('CD14+ Monocyte', 'CD14+ Monocyte'), ('CD4+/CD25 T Reg', 'CD4+_CD25 T Reg')):\n\
         \x20   ax = sc.pl.rank_genes_groups_violin(a, groups=[g], n_genes=3, show=False)[0]\n\
         \x20   compare(ax, '{dir}/stored_' + f + '.svg', g + ' vs. rest', list(a.uns['rank_genes_groups']['names'][g][:3]))\n\
         \x20   matplotlib.pyplot.close('all')\n\
         sc.tl.rank_genes_groups(a, 'bulk_labels', groups=['CD14+ Monocyte'], reference='CD19+ B', method='wilcoxon')\n\
         genes = ['FTL', 'CST3', 'NKG7', 'MS4A1']\n\
         ax = sc.pl.rank_genes_groups_violin(a, gene_names=genes, show=False)[0]\n\
         compare(ax, '{dir}/vs_CD14+ Monocyte.svg', 'CD14+ Monocyte vs. CD19+ B', genes)\n",
        src = src.display(),
        dir = dir.display()
    ));
    for (args, want) in [
        ("n_genes: 0, path: v.png", "`n_genes` must be positive"),
        ("key: nope, path: v.png", "uns['nope']"),
        (
            "jitter: 2.0, path: v.png",
            "`jitter` must be between 0 and 1",
        ),
        (
            "gene_names: [CST33], path: v.png",
            "gene `CST33` is not in the var",
        ),
        ("path: v.gif", "v.gif"),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!("  - {{id: v, op: rank_genes_groups_violin, input: data, {args}}}\n"),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// Colouring by a gene, as `sc.pl.umap(adata, color='CST3')` does with `adata.raw`: the
/// values come from `raw`'s X (here the file's raw, read as X), the lowest drawn in viridis'
/// first colour and the highest in its last, as many points of each as cells with those
/// values; `check` names a colour that is neither an obs column nor a gene.
#[test]
fn a_gene_colours_the_points_by_its_values() {
    let dir = scratch("plots-gene");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = pipeline(
        &dir,
        "gene.yaml",
        &src,
        &format!(
            "  - {{id: lognorm, op: read, path: '{}', use_raw: true}}\n\
             \x20 - {{id: fig, op: plot, input: data, basis: umap, color: CST3, raw: lognorm, path: '{}/cst3.svg'}}\n",
            src.display(),
            dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "import re, numpy as np, anndata as ad\n\
         a = ad.read_h5ad('{}')\n\
         v = np.asarray(a.raw[:, 'CST3'].X.todense()).ravel().astype(np.float32)\n\
         fills = re.findall(r'<circle [^>]*fill=\"#([0-9A-F]{{6}})\"', open('{}/cst3.svg').read())\n\
         assert len(fills) == len(v), (len(fills), len(v))\n\
         # viridis' ends, matplotlib's.\n\
         low, high = fills.count('440154'), fills.count('FDE725')\n\
         assert low == int((v == v.min()).sum()) and low > 50, (low, (v == v.min()).sum())\n\
         assert high == int((v == v.max()).sum()), (high, (v == v.max()).sum())\n",
        src.display(),
        dir.display()
    ));
    for (args, want) in [
        (
            "color: CST33",
            "the input has no obs['CST33'], and gene `CST33` is not in the var of",
        ),
        ("color: louvain, raw: data", "`color` must name a gene"),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!("  - {{id: fig, op: plot, input: data, basis: umap, {args}, path: f.png}}\n"),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// Violins of a gene (from the file's raw, as scanpy's `use_raw`) and an obs column per
/// cell type, against seaborn's under `sc.pl.violin(…, dodge=False)`: the same violins in
/// the same order, each outline's points where seaborn's are (one linear map per panel from
/// data to the image). Without `dodge=False`, scanpy 1.12 with seaborn 0.13 narrows every
/// violin to a tenth of its slot; we draw them full width, as scanpy's documentation shows.
#[test]
fn violins_are_seaborns() {
    let dir = scratch("plots-violin");
    let src = fixtures().join("pbmc68k_reduced.h5ad");
    let p = pipeline(
        &dir,
        "violin.yaml",
        &src,
        &format!(
            "  - {{id: lognorm, op: read, path: '{}', use_raw: true}}\n\
             \x20 - {{id: v, op: violin, input: data, keys: [CST3, n_counts], groupby: bulk_labels, raw: lognorm, stripplot: false, rotation: 90, path: '{}/v.svg'}}\n\
             \x20 - {{id: qc, op: violin, input: data, keys: [n_genes, percent_mito], jitter: 0.4, path: '{}/qc.png'}}\n",
            src.display(),
            dir.display(),
            dir.display()
        ),
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "import re, numpy as np, matplotlib\n\
         matplotlib.use('Agg')\n\
         import scanpy as sc\n\
         a = sc.read_h5ad('{src}')\n\
         axs = sc.pl.violin(a, ['CST3', 'n_counts'], groupby='bulk_labels', stripplot=False, dodge=False, show=False)\n\
         svg = open('{dir}/v.svg').read()\n\
         ours = [np.array([[float(c) for c in p.split(',')] for p in pts.split()]) for pts in re.findall(r'<polygon [^>]*points=\"([^\"]*)\"', svg)]\n\
         theirs = [c.get_paths()[0].vertices for ax in axs for c in ax.collections]\n\
         assert len(ours) == len(theirs) == 20, (len(ours), len(theirs))\n\
         for panel in range(2):\n\
         \x20   o = np.concatenate(ours[10 * panel:10 * panel + 10])\n\
         \x20   # seaborn's path: a start at the lowest value's right end, the left outline up the\n\
         \x20   # 100 support values, the right one down, a close; ours is the two outlines.\n\
         \x20   assert all(len(v) == 203 for v in theirs[10 * panel:10 * panel + 10])\n\
         \x20   t = np.concatenate([np.r_[v[1:101], v[102:202]] for v in theirs[10 * panel:10 * panel + 10]])\n\
         \x20   assert o.shape == t.shape, (o.shape, t.shape)\n\
         \x20   for axis, sign in ((0, 1), (1, -1)):\n\
         \x20       A = np.c_[np.ones(len(t)), t[:, axis]]\n\
         \x20       coef = np.linalg.lstsq(A, o[:, axis], rcond=None)[0]\n\
         \x20       err = np.abs(A @ coef - o[:, axis]).max()\n\
         \x20       assert err <= 1.5 and np.sign(coef[1]) == sign, (panel, axis, err, coef)\n",
        src = src.display(),
        dir = dir.display()
    ));
    assert!(dir.join("qc.png").exists());
    for (args, want) in [
        (
            "keys: [CST33]",
            "not an obs column of the input, and gene `CST33`",
        ),
        (
            "keys: [louvain]",
            "obs['louvain'] is category, and a violin needs numbers",
        ),
        (
            "keys: [n_counts], groupby: n_genes",
            "groups need a categorical column",
        ),
        (
            "keys: [n_counts], rotation: 45",
            "`rotation` must be 0 or 90",
        ),
        (
            "keys: [n_counts], jitter: 2.0",
            "`jitter` must be between 0 and 0.5",
        ),
    ] {
        let bad = pipeline(
            &dir,
            "bad.yaml",
            &src,
            &format!("  - {{id: v, op: violin, input: data, {args}, path: v.png}}\n"),
        );
        let (code, err) = engine_code(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}
