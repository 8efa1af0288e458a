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
