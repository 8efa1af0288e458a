//! The catalogue of pipeline operators: their inputs and parameters, with scanpy's names and
//! defaults so a step reads like the scanpy call it replaces.

/// The type a parameter's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Int,
    Float,
    Bool,
    Str,
    /// A file or directory path.
    Path,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Positions as Python indexes them: `"0:1000"`, `"-100:"`, `"1, 5, 10:20"`, or a YAML
    /// list of integers (see [`crate::index_expr`]).
    Indices,
    /// Another step whose data the op takes besides its input: the step, or one before it.
    Step,
    /// Names (genes, groups, colours): a YAML list of strings or one comma-separated string.
    Names,
}

impl ParamType {
    pub fn describe(&self) -> String {
        match self {
            ParamType::Int => "an integer".into(),
            ParamType::Float => "a number".into(),
            ParamType::Bool => "true or false".into(),
            ParamType::Str => "a string".into(),
            ParamType::Path => "a path".into(),
            ParamType::Indices => "indices or slices like \"0:1000, 2000\"".into(),
            ParamType::Step => "a step id (the input or a step before it)".into(),
            ParamType::Names => "names: a list of strings or \"a, b, c\"".into(),
            ParamType::Choice(c) => format!(
                "one of {}",
                c.iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A default value written as the YAML text scanpy documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Required,
    /// `None` in scanpy: the parameter may be left out.
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamDef {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: DefaultValue,
}

/// `OpDef::inputs` of an operator that takes any number of input steps (`concat`).
pub const VARIADIC: usize = usize::MAX;

/// One operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpDef {
    pub name: &'static str,
    /// Number of input steps: 0 for sources.
    pub inputs: usize,
    pub params: &'static [ParamDef],
    pub summary: &'static str,
    /// What the step's output holds that its input did not, with scanpy's keys.
    pub writes: &'static str,
}

impl OpDef {
    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether the step's result is data another step or an output can take: a plot only
    /// writes its image.
    pub fn produces_data(&self) -> bool {
        !PLOTS.contains(&self.name)
    }
}

const fn p(name: &'static str, ty: ParamType, default: DefaultValue) -> ParamDef {
    ParamDef { name, ty, default }
}

use DefaultValue as D;
use ParamType as T;

/// Every operator a pipeline can use.
pub const OPS: &[OpDef] = &[
    OpDef {
        name: "synthetic",
        inputs: 0,
        summary: "Gaussian blobs as sklearn.datasets.make_blobs draws them (the EHR tutorial data), streamed",
        writes: "X (dense), obs['blob']",
        params: &[
            p("n_obs", T::Int, D::Int(50_000)),
            p("n_vars", T::Int, D::Int(1_000)),
            p("centers", T::Int, D::Int(4)),
            p("cluster_std", T::Float, D::Float(1.0)),
            p("seed", T::Int, D::Int(42)),
            p(
                "dtype",
                T::Choice(&["float32", "float64"]),
                D::Str("float32"),
            ),
        ],
    },
    OpDef {
        name: "synthetic_counts",
        inputs: 0,
        summary: "single-cell-like sparse counts (negative binomial, cell types with marker genes, batches, library sizes, mitochondrial genes), streamed",
        writes: "X (sparse counts), obs['cell_type'], obs['batch']; genes named GENE…, MT-… for mitochondrial",
        params: &[
            p("n_obs", T::Int, D::Int(10_000)),
            p("n_vars", T::Int, D::Int(2_000)),
            p("n_types", T::Int, D::Int(6)),
            p("n_batches", T::Int, D::Int(2)),
            p("library_size", T::Float, D::Float(3000.0)),
            p("seed", T::Int, D::Int(0)),
        ],
    },
    OpDef {
        name: "read",
        inputs: 0,
        summary: "an .h5ad or .zarr dataset, or 10x output (Cell Ranger .h5, an MTX directory; `genome`, `gex_only` as scanpy's read_10x_h5), opened lazily; `layer` or `use_raw` read that matrix as X",
        writes: "X (or the layer / raw.X asked for), obs, var (raw.var with use_raw), obsm, varm, obsp, uns as stored",
        params: &[
            p("path", T::Path, D::Required),
            p("genome", T::Str, D::Null),
            p("gex_only", T::Bool, D::Bool(true)),
            p("layer", T::Str, D::Null),
            p("use_raw", T::Bool, D::Bool(false)),
        ],
    },
    OpDef {
        name: "concat",
        inputs: VARIADIC,
        summary: "anndata.concat along obs of two or more `read` steps (h5ad and zarr mixed), lazily: X stays the files' chunks side by side and every row, gene and column selection is pushed into each file's read; `join` inner (the genes all have) or outer (all genes, `fill_value` where a file lacks one: 0 for sparse X, NaN for dense), `label` + `keys` (an obs column naming each cell's file), `index_unique` (cell names suffixed with the key), `merge` (var columns: same, unique, first, only), `uns_merge`",
        writes: "X, obs (the files' columns, and `label`), var (by `merge`), obsm (keys every file has), uns (by `uns_merge`)",
        params: &[
            p("axis", T::Choice(&["obs", "var"]), D::Str("obs")),
            p("join", T::Choice(&["inner", "outer"]), D::Str("inner")),
            p("label", T::Str, D::Null),
            p("keys", T::Names, D::Null),
            p("index_unique", T::Str, D::Null),
            p("fill_value", T::Float, D::Null),
            p(
                "merge",
                T::Choice(&["same", "unique", "first", "only"]),
                D::Null,
            ),
            p(
                "uns_merge",
                T::Choice(&["same", "unique", "first", "only"]),
                D::Null,
            ),
        ],
    },
    OpDef {
        name: "select",
        inputs: 1,
        summary: "a view, adata[obs, var]: rows and columns by position or by a SQL predicate over obs/var (pushed into the scan)",
        writes: "a view: the selected cells and genes of everything (X, obs, var, obsm, varm, obsp)",
        params: &[
            p("obs", T::Indices, D::Null),
            p("var", T::Indices, D::Null),
            p("where", T::Str, D::Null),
            p("var_where", T::Str, D::Null),
        ],
    },
    OpDef {
        name: "calculate_qc_metrics",
        inputs: 1,
        summary: "sc.pp.calculate_qc_metrics: per-cell and per-gene counts; `qc_vars: \"mt=MT-\"` marks genes by name prefix",
        writes: "obs['n_genes_by_counts', 'log1p_n_genes_by_counts', 'total_counts', 'log1p_total_counts', 'pct_counts_in_top_N_genes', 'total_counts_<qc>', 'log1p_total_counts_<qc>', 'pct_counts_<qc>'], var['n_cells_by_counts', 'mean_counts', 'log1p_mean_counts', 'pct_dropout_by_counts', 'total_counts', 'log1p_total_counts', '<qc>']",
        params: &[
            p("qc_vars", T::Str, D::Null),
            p("percent_top", T::Str, D::Str("50,100,200,500")),
            p("log1p", T::Bool, D::Bool(true)),
        ],
    },
    OpDef {
        name: "filter_cells",
        inputs: 1,
        summary: "sc.pp.filter_cells: keep cells by total counts or genes detected (one bound per step)",
        writes: "the kept cells; obs['n_genes'] or obs['n_counts']",
        params: &[
            p("min_counts", T::Float, D::Null),
            p("min_genes", T::Int, D::Null),
            p("max_counts", T::Float, D::Null),
            p("max_genes", T::Int, D::Null),
        ],
    },
    OpDef {
        name: "filter_genes",
        inputs: 1,
        summary: "sc.pp.filter_genes: keep genes by total counts or cells detected (one bound per step)",
        writes: "the kept genes; var['n_cells'] or var['n_counts']",
        params: &[
            p("min_counts", T::Float, D::Null),
            p("min_cells", T::Int, D::Null),
            p("max_counts", T::Float, D::Null),
            p("max_cells", T::Int, D::Null),
        ],
    },
    OpDef {
        name: "normalize_total",
        inputs: 1,
        summary: "sc.pp.normalize_total: each cell scaled to target_sum counts (median of totals when unset)",
        writes: "X (each cell's total = target_sum)",
        params: &[p("target_sum", T::Float, D::Null)],
    },
    OpDef {
        name: "log1p",
        inputs: 1,
        summary: "sc.pp.log1p: X = ln(1 + X)",
        writes: "X, uns['log1p']",
        params: &[],
    },
    OpDef {
        name: "highly_variable_genes",
        inputs: 1,
        summary: "sc.pp.highly_variable_genes (seurat, cell_ranger on log data; seurat_v3 on counts): var['highly_variable'], …",
        writes: "var['highly_variable', 'means', 'dispersions', 'dispersions_norm'] (seurat_v3: 'variances', 'variances_norm', 'highly_variable_rank'; with batch_key: 'highly_variable_nbatches', 'highly_variable_intersection'), uns['hvg']; only those genes with subset",
        params: &[
            p("n_top_genes", T::Int, D::Null),
            p("min_disp", T::Float, D::Float(0.5)),
            p("max_disp", T::Float, D::Null),
            p("min_mean", T::Float, D::Float(0.0125)),
            p("max_mean", T::Float, D::Float(3.0)),
            p("n_bins", T::Int, D::Int(20)),
            p(
                "flavor",
                T::Choice(&["seurat", "cell_ranger", "seurat_v3"]),
                D::Str("seurat"),
            ),
            p("subset", T::Bool, D::Bool(false)),
            p("batch_key", T::Str, D::Null),
            p("span", T::Float, D::Float(0.3)),
        ],
    },
    OpDef {
        name: "scale",
        inputs: 1,
        summary: "sc.pp.scale: zero mean, unit variance per variable",
        writes: "X (z-scores, clipped at max_value), var['mean', 'std']",
        params: &[
            p("zero_center", T::Bool, D::Bool(true)),
            p("max_value", T::Float, D::Null),
        ],
    },
    OpDef {
        name: "pca",
        inputs: 1,
        summary: "sc.pp.pca: obsm['X_pca'], varm['PCs'], uns['pca']; n_comps defaults to 50, or min(n_obs, n_vars) - 1 when smaller, as in scanpy",
        writes: "obsm['X_pca'], varm['PCs'], uns['pca'] ('variance', 'variance_ratio', 'params')",
        params: &[
            p("n_comps", T::Int, D::Null),
            p("zero_center", T::Bool, D::Bool(true)),
            p(
                "svd_solver",
                T::Choice(&["auto", "covariance_eigh", "randomized"]),
                D::Str("auto"),
            ),
            p("random_state", T::Int, D::Int(0)),
            p("mask_var", T::Str, D::Null),
        ],
    },
    OpDef {
        name: "neighbors",
        inputs: 1,
        summary: "sc.pp.neighbors: obsp['distances'], obsp['connectivities'], uns['neighbors']",
        writes: "obsp['distances', 'connectivities'], uns['neighbors']",
        params: &[
            p("n_neighbors", T::Int, D::Int(15)),
            p("n_pcs", T::Int, D::Null),
            p("use_rep", T::Str, D::Str("X_pca")),
            p("metric", T::Choice(&["euclidean"]), D::Str("euclidean")),
            p("random_state", T::Int, D::Int(0)),
        ],
    },
    OpDef {
        name: "leiden",
        inputs: 1,
        summary: "sc.tl.leiden (igraph flavour): obs['leiden']",
        writes: "obs[key_added] (categorical), uns[key_added]['params']",
        params: &[
            p("resolution", T::Float, D::Float(1.0)),
            p("random_state", T::Int, D::Int(0)),
            p("n_iterations", T::Int, D::Int(2)),
            p("key_added", T::Str, D::Str("leiden")),
        ],
    },
    OpDef {
        name: "umap",
        inputs: 1,
        summary: "sc.tl.umap on the kNN graph (spectral init, seeded): obsm['X_umap'], uns['umap']",
        writes: "obsm['X_umap'], uns['umap']",
        params: &[
            p("min_dist", T::Float, D::Float(0.5)),
            p("spread", T::Float, D::Float(1.0)),
            p("n_components", T::Int, D::Int(2)),
            p("maxiter", T::Int, D::Null),
            p("alpha", T::Float, D::Float(1.0)),
            p("gamma", T::Float, D::Float(1.0)),
            p("negative_sample_rate", T::Int, D::Int(5)),
            p(
                "init_pos",
                T::Choice(&["spectral", "random"]),
                D::Str("spectral"),
            ),
            p("random_state", T::Int, D::Int(0)),
            p("a", T::Float, D::Null),
            p("b", T::Float, D::Null),
        ],
    },
    OpDef {
        name: "rank_genes_groups",
        inputs: 1,
        summary: "sc.tl.rank_genes_groups: marker genes of each group of a categorical obs column against the rest (or a reference group), by Welch's t-test or Wilcoxon's rank-sum test, streamed over X (Wilcoxon in gene blocks, one pass each); `raw: STEP` ranks that step's X and genes instead, as scanpy ranks `adata.raw`",
        writes: "uns[key_added] ('names', 'scores', 'logfoldchanges', 'pvals', 'pvals_adj' as record arrays with a field per group, 'params'; with pts, 'pts' and, against the rest, 'pts_rest': data frames of genes × groups)",
        params: &[
            p("groupby", T::Str, D::Required),
            p("groups", T::Names, D::Null),
            p("reference", T::Str, D::Str("rest")),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p(
                "method",
                T::Choice(&["t-test", "t-test_overestim_var", "wilcoxon"]),
                D::Str("t-test"),
            ),
            p("tie_correct", T::Bool, D::Bool(false)),
            p("n_genes", T::Int, D::Null),
            p(
                "corr_method",
                T::Choice(&["benjamini-hochberg", "bonferroni"]),
                D::Str("benjamini-hochberg"),
            ),
            p("key_added", T::Str, D::Str("rank_genes_groups")),
            p("pts", T::Bool, D::Bool(false)),
        ],
    },
    OpDef {
        name: "plot",
        inputs: 1,
        summary: "sc.pl.embedding: a scatter of two components of an embedding, coloured by an obs column (stored `uns['<color>_colors']` honoured) or a gene (from X, or `raw: STEP`'s X: a log-normalised step, or a `read` of a layer), framed without ticks, points sized 120000 / n_cells, the legend beside the axes",
        writes: "the image at `path`: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("basis", T::Str, D::Str("pca")),
            p("components", T::Str, D::Str("1,2")),
            p("color", T::Str, D::Null),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p("path", T::Path, D::Required),
            p("title", T::Str, D::Null),
            p("size", T::Float, D::Null),
            p(
                "legend_loc",
                T::Choice(&["right margin", "on data", "none"]),
                D::Str("right margin"),
            ),
            p("palette", T::Names, D::Null),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "dotplot",
        inputs: 1,
        summary: "sc.pl.dotplot / sc.pl.rank_genes_groups_dotplot: per group of a categorical obs column and gene, the fraction of cells expressing it (dot size) and their mean (colour, Reds), in one pass over X; the genes are `var_names`, or each group's top `n_genes` from `uns[key]` under brackets; `raw: STEP` takes that step's X, as scanpy's `use_raw`",
        writes: "the image at `path`: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("groupby", T::Str, D::Null),
            p("var_names", T::Names, D::Null),
            p("n_genes", T::Int, D::Null),
            p("key", T::Str, D::Str("rank_genes_groups")),
            p("groups", T::Names, D::Null),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p("expression_cutoff", T::Float, D::Float(0.0)),
            p("mean_only_expressed", T::Bool, D::Bool(false)),
            p("standard_scale", T::Choice(&["var", "group"]), D::Null),
            p("dendrogram", T::Bool, D::Null),
            p("path", T::Path, D::Required),
            p("title", T::Str, D::Null),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "stacked_violin",
        inputs: 1,
        summary: "sc.pl.stacked_violin / sc.pl.rank_genes_groups_stacked_violin: a row per group of a categorical obs column and a column per gene, each cell a violin of the group's values (seaborn's, scaled to one width, cut at the extremes) coloured by their median (Blues), in one pass over X per block of genes; genes and groups chosen as for `dotplot`",
        writes: "the image at `path`: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("groupby", T::Str, D::Null),
            p("var_names", T::Names, D::Null),
            p("n_genes", T::Int, D::Null),
            p("key", T::Str, D::Str("rank_genes_groups")),
            p("groups", T::Names, D::Null),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p("standard_scale", T::Choice(&["var", "group"]), D::Null),
            p("dendrogram", T::Bool, D::Null),
            p("path", T::Path, D::Required),
            p("title", T::Str, D::Null),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "rank_genes_groups_plot",
        inputs: 1,
        summary: "sc.pl.rank_genes_groups: a panel per group of `uns[key]` with its top `n_genes` names written upright at their rank and score, `ncols` panels a row sharing the score axis",
        writes: "the image at `path`: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("key", T::Str, D::Str("rank_genes_groups")),
            p("groups", T::Names, D::Null),
            p("n_genes", T::Int, D::Int(20)),
            p("fontsize", T::Int, D::Int(8)),
            p("ncols", T::Int, D::Int(4)),
            p("sharey", T::Bool, D::Bool(true)),
            p("path", T::Path, D::Required),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "violin",
        inputs: 1,
        summary: "sc.pl.violin: per key (a gene, or a numeric obs column) the distribution of its values per group of `groupby` (one violin per key without it, as `multi_panel=True`), seaborn's violins (density scaled to the same width, cut at the extremes) with the cells jittered over them; genes from X or `raw: STEP`'s X in one pass",
        writes: "the image at `path`: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("keys", T::Names, D::Required),
            p("groupby", T::Str, D::Null),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p("stripplot", T::Bool, D::Bool(true)),
            p("jitter", T::Float, D::Float(0.1)),
            p("size", T::Float, D::Float(1.0)),
            p("rotation", T::Float, D::Null),
            p("xlabel", T::Str, D::Null),
            p("path", T::Path, D::Required),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "rank_genes_groups_violin",
        inputs: 1,
        summary: "sc.pl.rank_genes_groups_violin: per group of `uns[key]` a figure of its top `n_genes` genes (or `gene_names`), each gene's violin split into the group's cells (left) and the rest's or the reference's (right), seaborn's densities (each half scaled to one width, cut two bandwidths past the extremes) with the cells jittered over them; values from X or `raw: STEP`'s X, a pass per group (one for `gene_names`)",
        writes: "an image per group at `path` with `_GROUP` before the extension: .png (at `dpi`), .svg or .pdf (nothing in the data)",
        params: &[
            p("key", T::Str, D::Str("rank_genes_groups")),
            p("groups", T::Names, D::Null),
            p("n_genes", T::Int, D::Int(20)),
            p("gene_names", T::Names, D::Null),
            p("raw", T::Step, D::Null),
            p("layer", T::Str, D::Null),
            p("split", T::Bool, D::Bool(true)),
            p("strip", T::Bool, D::Bool(true)),
            p("jitter", T::Float, D::Float(0.1)),
            p("size", T::Float, D::Float(1.0)),
            p("path", T::Path, D::Required),
            p("dpi", T::Int, D::Int(150)),
        ],
    },
    OpDef {
        name: "preshuffle",
        inputs: 1,
        summary: "annbatch's preshuffle (DatasetCollection.add_adatas) of the input's cells into a collection of zarr v3 datasets with sharded X for minibatch loaders: blocks of `shuffle_chunk_size` contiguous cells dealt to datasets of `dataset_size` cells (or bytes) in a seeded random order, each dataset permuted in memory (then stably sorted by `groupby`) and written, one at a time; `var_subset` keeps those genes; the input may be any step (a filtered, normalised concatenation)",
        writes: "the collection at `path` (.zarr): dataset_0, dataset_1, … each with X (CSR, `n_obs_per_chunk` cells a chunk, `shard_size` a shard), obs and var (nothing in the data)",
        params: &[
            p("path", T::Path, D::Required),
            p("dataset_size", T::Str, D::Null),
            p("shuffle_chunk_size", T::Int, D::Int(1000)),
            p("n_obs_per_chunk", T::Int, D::Int(64)),
            p("shard_size", T::Str, D::Str("1G")),
            p("shuffle", T::Bool, D::Bool(true)),
            p("seed", T::Int, D::Int(0)),
            p("groupby", T::Names, D::Null),
            p("var_subset", T::Names, D::Null),
            p("compression", T::Str, D::Str("blosc-lz4:3")),
        ],
    },
];

/// Operators that only write a file (an image, a collection): their step is no data for
/// another step or an output.
pub const PLOTS: &[&str] = &[
    "preshuffle",
    "plot",
    "dotplot",
    "stacked_violin",
    "rank_genes_groups_plot",
    "rank_genes_groups_violin",
    "violin",
];

/// Looks an operator up by name.
pub fn op(name: &str) -> Option<&'static OpDef> {
    OPS.iter().find(|o| o.name == name)
}
