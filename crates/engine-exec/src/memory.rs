//! The memory a run holds besides its X blocks, estimated from the plan before anything runs,
//! so `--memory-limit` bounds the whole run: the per-cell and per-gene results (obs/var
//! frames, embeddings, graphs) each value carries, and each step's scratch while it runs
//! (the Gram matrices, kNN candidates, Leiden's and UMAP's working sets). The X blocks get
//! what is left; a run whose results alone do not fit is refused before it starts.
//!
//! The figures are upper estimates in bytes from the code's own layouts (a `String` per index
//! entry, f32 embeddings, CSR graphs of u32 indices and f32 values with a symmetrised copy),
//! checked against measured peaks on the counts and blobs workflows (see the bench notes).
//! The binary itself, its allocator and thread stacks are not counted: [`RUNTIME_OVERHEAD`].

use crate::physical::pca::GRAM_MAX_VARS;
use engine_plan::{LogicalPlan, Node, NodeId, Op, RankMethod, Schema, SvdSolver};

/// What the process takes whatever the data: code, allocator arenas, thread stacks, the HDF5
/// library, and DataFusion's session once a SQL predicate runs. Peak memory stays within the
/// limit plus this. Measured (2 workers): the binary's code pages are 58 MiB in a release
/// build and 65 MiB in a debug build; the rest about 20 MiB (the 100k-cell counts workflow at
/// a 128 MiB limit peaks at 191 MiB release, 200 MiB debug).
pub const RUNTIME_OVERHEAD: usize = 96 << 20;

/// The least the X blocks may have, at their real cost: one 64-row block per worker of a wide
/// dense matrix.
pub const MIN_BLOCK_BUDGET: usize = 8 << 20;

/// What X blocks really take for each byte lowering budgets them (16 bytes per value): the
/// decoded values, their index copies and the kernel's output.
pub const BLOCK_COST: usize = 2;

/// What the plan holds at its peak.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// Bytes held besides X blocks at the costliest step.
    pub peak: usize,
    /// That step, and what dominates there.
    pub step: String,
    pub what: &'static str,
    /// PCA nodes left to choose their solver (`svd_solver: auto`) that run randomized because
    /// the Gram matrix would not fit the limit, with the bytes the Gram would have needed.
    pub randomized_pca: Vec<(usize, usize)>,
}

/// Bytes per value of an obsm entry: computed embeddings are f32; a file's may be f64.
fn embedding_bytes(key: &str) -> usize {
    if key == "X_pca" || key == "X_umap" {
        4
    } else {
        8
    }
}

/// Bytes a pass that gathers a block of genes' values at once holds at least (Wilcoxon's
/// nonzero values with their groups, a stacked violin's values): 64 MiB, or one dense gene of
/// `n` cells when that is more. Fewer genes per pass only means more passes over X; `lower`
/// adds what the limit leaves spare.
pub fn gather_working_set(n: usize) -> usize {
    (64 << 20).max(32 * n)
}

/// Bytes a preshuffled dataset holds per stored value at its peak: its gathered blocks and
/// their concatenation (12 bytes each: a value and an index), then the permuted copy and the
/// copy cast for writing with the writer's shard buffers, beside the X blocks being read
/// (measured: 58 bytes at the peak on the 100k counts in 4 files).
pub const PRESHUFFLE_BYTES_PER_VALUE: usize = 64;

/// Cells per preshuffled dataset: `dataset_size` in cells, or in bytes of stored X (4-byte
/// values and indices, `values` a row), or (`None`) as many as `spare` bytes hold, at least one
/// block of `shuffle_chunk_size` (and, without `spare`, that block).
pub fn preshuffle_rows(p: &engine_plan::Preshuffle, values: usize, spare: Option<usize>) -> usize {
    let rows = match p.dataset_size {
        Some(engine_plan::Size::Rows(r)) => r,
        Some(engine_plan::Size::Bytes(b)) => (b as usize / (8 * values.max(1))).max(1),
        None => spare.map_or(0, |s| s / (PRESHUFFLE_BYTES_PER_VALUE * values.max(1))),
    };
    rows.max(p.shuffle_chunk_size)
}

/// Values a row of `id`'s X holds, estimated from the scan it reads (a sparse file's mean
/// stored values per row, a generator's library size) and the genes kept.
pub fn row_values(plan: &LogicalPlan, id: NodeId) -> usize {
    let cols = plan.node(id).schema.n_vars;
    let mut at = id;
    loop {
        let node = plan.node(at);
        if let Op::Scan(scan) = &node.op {
            let (n, m) = scan.source_shape();
            let per_row = |nnz: u64, n: usize, m: usize| {
                (nnz as f64 / n.max(1) as f64 * cols as f64 / m.max(1) as f64).ceil() as usize
            };
            return match &scan.source {
                engine_plan::Source::File { storage, .. } => match &storage.indptr {
                    Some(p) => per_row(*p.last().unwrap_or(&0), n, m),
                    None => cols,
                },
                engine_plan::Source::Concat(c) => c
                    .parts
                    .iter()
                    .map(|p| match &p.storage.indptr {
                        Some(ip) => per_row(
                            *ip.last().unwrap_or(&0),
                            p.storage.shape[0],
                            p.storage.shape[1],
                        ),
                        None => cols,
                    })
                    .max()
                    .unwrap_or(cols),
                engine_plan::Source::Counts {
                    library_size,
                    n_vars,
                    ..
                } => ((library_size * 0.6).min(*n_vars as f64) as usize).min(cols),
                engine_plan::Source::Synthetic { .. } => cols,
            }
            .min(cols);
        }
        match node.inputs.first() {
            Some(i) => at = *i,
            None => return cols,
        }
    }
}

/// Bytes of a kNN graph in `obsp` (f32 CSR: an 8-byte pointer per row, 8 bytes per entry).
fn graph_bytes(name: &str, n: usize, k: usize) -> usize {
    let per_row = if name == "distances" {
        k.saturating_sub(1)
    } else {
        graph_edges(n, k) / n.max(1)
    };
    n * (8 + 8 * per_row)
}

/// Entries of the symmetrised kNN graph at most: each cell's k - 1 neighbours, and as many
/// again from cells that have it as a neighbour (measured: 23.3 per cell at k = 15 on 96k
/// cells of the counts workflow, against this bound of 28).
fn graph_edges(n: usize, k: usize) -> usize {
    2 * k.saturating_sub(1) * n
}

/// Bytes of a frame of `rows` rows and `columns` columns: a `String` per index entry, 8 bytes
/// per column value.
fn frame_bytes(rows: usize, columns: usize) -> usize {
    rows * (56 + 8 * columns)
}

/// Bytes of a value's obs and var frames.
fn frames(s: &Schema) -> usize {
    frame_bytes(s.n_obs, s.obs.len()) + frame_bytes(s.n_vars, s.var.len())
}

/// Bytes of one value's annotations: obs and var frames, embeddings, graphs and per-row
/// factors.
fn held(s: &Schema, k: usize) -> usize {
    let (n, d) = (s.n_obs, s.n_vars);
    let obsm: usize = s
        .obsm
        .iter()
        .map(|(key, w)| n * w * embedding_bytes(key))
        .sum();
    let varm: usize = s.varm.iter().map(|(_, w)| d * w * 8).sum();
    let obsp: usize = s.obsp.iter().map(|g| graph_bytes(g, n, k)).sum();
    frames(s) + obsm + varm + obsp + 16 * n + 32 * d
}

/// Bytes a writer converts at once besides the values it writes in place (dense arrays are
/// written from their own memory): a frame's strings, as HDF5's variable-length copies (48
/// bytes a row, with a converted column of 8), or a sparse element's piece of
/// [`engine_store::write::WRITE_PIECE`] indices and values with its row pointers.
fn writer_copy(s: &Schema) -> usize {
    let frame = 56 * s.n_obs.max(s.n_vars);
    let sparse = 12 * s.n_obs + 12 * engine_store::write::WRITE_PIECE;
    frame.max(sparse)
}

/// Scratch while a node runs, beyond its input and output values.
fn scratch(
    node: &Node,
    input: &Schema,
    k: usize,
    genes: usize,
    workers: usize,
    randomized: bool,
) -> (usize, &'static str) {
    let (n, d) = (input.n_obs, input.n_vars);
    match &node.op {
        Op::Qc(_) => (200 * n + 64 * d * workers, "per-cell QC metrics"),
        Op::Filter(_) | Op::NormalizeTotal(_) => (48 * n + 24 * d * workers, "per-cell totals"),
        Op::Hvg(_) => (8 * n + 160 * d * workers, "per-gene statistics"),
        Op::Scale(_) => (48 * d * workers, "per-gene moments"),
        Op::Pca(p) => {
            let d = genes.min(d);
            let c = node
                .schema
                .obsm
                .iter()
                .find(|(k, _)| k == "X_pca")
                .map_or(50, |(_, w)| *w);
            let gram = d <= GRAM_MAX_VARS || p.svd_solver == SvdSolver::CovarianceEigh;
            let fit = if gram && p.svd_solver != SvdSolver::Randomized && !randomized {
                // A Gram per worker, then the covariance and the eigensolver's copies while
                // they are still held (measured at 2,000 genes on 2 workers: +50 MiB in the
                // pass, +102 MiB after it).
                8 * d * d * workers + 24 * d * d
            } else {
                8 * d * (c + 12) * (workers + 5)
            };
            (fit + 8 * n * c, "the PCA Gram matrices and scores")
        }
        Op::Neighbors(nb) => {
            let k = nb.n_neighbors;
            let rep = input.obsm.iter().find(|(key, _)| *key == nb.use_rep);
            let c = rep.map_or(50, |(_, w)| *w);
            // A representation stored in double precision is copied to single for the search.
            let copy = rep.map_or(0, |(key, w)| {
                if embedding_bytes(key) == 4 {
                    0
                } else {
                    4 * n * w
                }
            });
            // Exact search copies the representation twice (f64); NN-descent's lists and
            // candidates are counted from its layout. Both run before the output's graphs
            // exist (counted in the output).
            let search = if n < 8192 {
                16 * n * c + 24 * n * k
            } else {
                copy + engine_ops::nndescent::nn_descent_bytes(n, k)
            };
            let graphs = graph_bytes("distances", n, k) + graph_bytes("connectivities", n, k);
            // Then beside the search's lists (12 bytes an entry): the connectivities, built
            // from the directed memberships and their transpose's pattern (12 bytes an entry)
            // and per-cell smoothing (40 bytes) before the distances graph exists; then the
            // distances graph.
            let lists = 12 * n * k;
            let build =
                (lists + 12 * n * k + 40 * n).saturating_sub(graph_bytes("distances", n, k));
            (
                search.saturating_sub(graphs).max(build).max(lists),
                "kNN lists and graphs",
            )
        }
        // The graph is borrowed; the first aggregate holds at most its edges (8 bytes each,
        // see `graph_edges`), beside about twenty words of per-cell state.
        Op::Leiden(_) => (8 * graph_edges(n, k) + 160 * n, "Leiden's working graph"),
        Op::Umap(u) => {
            // The spectral start reads the graph in place: its Lanczos basis (34 vectors) and
            // degrees, or the dense operator on small graphs. Then the SGD: per edge a tail
            // and its schedule (8 bytes; the sampling counters are computed), per cell its
            // ordering, snapshot and deferred moves.
            let spectral = 300 * n + if n <= 4096 { 40 * n * n } else { 0 };
            let sgd = 8 * graph_edges(n, k) + 120 * n;
            (
                spectral.max(sgd) + 16 * n * u.n_components,
                "UMAP's spectral start and edge lists",
            )
        }
        Op::Plot(_) => (128 * n, "the plot's points and labels"),
        // Per key each cell's value (float32, and float64 for a group's density), and the
        // drawn points.
        Op::Violin(v) => (12 * n * v.keys.len() + 16 * n, "the violins' values"),
        // One group's genes at a time: their float32 values and the two sides' copies, one
        // side's float64 values for its density, each cell's group and side.
        Op::RankGenesGroupsViolin(v) => {
            let genes = v.gene_names.as_ref().map_or(v.n_genes, Vec::len);
            (8 * n * genes + 32 * n, "the split violins' gathered values")
        }
        Op::Dotplot(dp) if dp.kind == engine_plan::MarkerKind::StackedViolin => (
            // Each cell's group and the gathered values of a block of genes, sized to this
            // working set (at least one gene: its float32 values and a group's float64 copy).
            16 * n + gather_working_set(n),
            "the violins' gathered values",
        ),
        Op::Dotplot(dp) => {
            // Each cell's group, and per worker four numbers per group (budgeted at 64) and
            // chosen gene, beside a slot per gene.
            let genes = match &dp.genes {
                engine_plan::DotGenes::Names(v) => v.len(),
                engine_plan::DotGenes::Ranked { n_genes, .. } => n_genes.saturating_mul(64),
            }
            .min(d);
            (
                16 * n + workers * (4 * d + 4 * 8 * 65 * genes),
                "the dot plot's per-group sums",
            )
        }
        Op::RankGenesGroups(r) => {
            // Per-category column sums (three arrays of n_vars) for each worker; the groups
            // are known only at run time: budgeted at 64 of them. Wilcoxon's then gather a
            // block of genes' values, and keep rank sums and ties per group.
            let sums = 3 * 8 * d * 65 * workers + 48 * d;
            if r.method == RankMethod::Wilcoxon {
                (
                    sums + gather_working_set(n) + 2 * 8 * d * 65,
                    "per-group gene sums and Wilcoxon's gathered values",
                )
            } else {
                (sums, "per-group gene sums")
            }
        }
        Op::Write(_) => (writer_copy(input), "the writer's copy of an element"),
        _ => (0, "per-cell results"),
    }
}

/// The genes a PCA step decomposes at most: with the highly variable genes as its mask, the
/// `n_top_genes` of the `highly_variable_genes` step above it (the plan's gene count is only
/// a bound there); otherwise every gene.
fn pca_genes(plan: &LogicalPlan, node: &Node) -> usize {
    let Op::Pca(p) = &node.op else {
        return usize::MAX;
    };
    if p.mask_var.as_deref() != Some("highly_variable") {
        return usize::MAX;
    }
    let mut at = node.inputs.first().copied();
    while let Some(id) = at {
        let n = plan.node(id);
        if let Op::Hvg(h) = &n.op {
            return h.n_top_genes.unwrap_or(usize::MAX);
        }
        at = n.inputs.first().copied();
    }
    usize::MAX
}

/// The costliest step of `plan` (only `live` nodes run) for `workers` threads within
/// `limit` bytes: a PCA free to choose its solver whose Gram matrices would not fit runs
/// randomized (a few more passes over X, a working set of `n_vars × (n_comps + 12)` per
/// worker), as scanpy's users pick `svd_solver='randomized'` for large data.
pub fn estimate(plan: &LogicalPlan, live: &[bool], workers: usize, limit: usize) -> MemoryEstimate {
    // The graphs' width comes from the `neighbors` step that built them.
    let k = plan
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Neighbors(nb) => Some(nb.n_neighbors),
            _ => None,
        })
        .max()
        .unwrap_or(15);
    let mut best = MemoryEstimate {
        peak: 0,
        step: String::new(),
        what: "",
        randomized_pca: Vec::new(),
    };
    let mut randomized_pca = Vec::new();
    // Values held for later consumers while a step runs (the driver's order and lifetimes):
    // their frames are their own; embeddings and graphs are shared with the values made from
    // them.
    let inputs: Vec<Vec<usize>> = plan
        .nodes
        .iter()
        .map(|n| n.inputs.iter().map(|i| i.0).collect())
        .collect();
    let sink: Vec<bool> = plan.nodes.iter().map(|n| n.op.is_sink()).collect();
    let mut pending = vec![0usize; plan.nodes.len()];
    for (i, _) in live.iter().enumerate().filter(|(_, l)| **l) {
        for &j in &inputs[i] {
            pending[j] += 1;
        }
    }
    let mut held_for_later: Vec<usize> = Vec::new();
    for id in crate::order::running_order(&inputs, &sink) {
        let (node, live) = (&plan.nodes[id], live[id]);
        if !live {
            continue;
        }
        // A writer's other slots are held values too; only its first input is counted as
        // the input.
        let others: usize = held_for_later
            .iter()
            .filter(|&&v| inputs[id].first() != Some(&v))
            .map(|&v| frames(&plan.nodes[v].schema))
            .sum();
        // An input another step still needs is copied for this one (its frames).
        let shared_input = inputs[id].iter().any(|&j| pending[j] > 1);
        for &j in &inputs[id] {
            pending[j] -= 1;
        }
        held_for_later.retain(|&v| pending[v] > 0);
        if pending[id] > 0 {
            held_for_later.push(id);
        }
        let mut input = node
            .inputs
            .first()
            .map(|i| plan.node(*i).schema.clone())
            .unwrap_or_default();
        // Marker genes ranked on another step's X (`raw`) have its genes.
        if let (Op::RankGenesGroups(_) | Op::Dotplot(_) | Op::RankGenesGroupsViolin(_), Some(raw)) =
            (&node.op, node.inputs.get(1))
        {
            input.n_vars = input.n_vars.max(plan.node(*raw).schema.n_vars);
        }
        let genes = pca_genes(plan, node);
        // The output shares the input's embeddings and graphs (behind `Arc`) and adds its
        // own; the frames are copied when the input has another consumer.
        let out = if node.op.is_sink() {
            0
        } else {
            held(&node.schema, k)
        };
        let copied_obs = if shared_input && !sink[id] {
            frame_bytes(input.n_obs, input.obs.len())
        } else {
            0
        };
        // A preshuffle holds a dataset of cells; the least is one block of them.
        let shuffle = match &node.op {
            Op::Preshuffle(p) => {
                let per_row = row_values(plan, NodeId(id)).max(1);
                let rows = preshuffle_rows(p, per_row, None);
                PRESHUFFLE_BYTES_PER_VALUE * per_row * rows + frame_bytes(rows, input.obs.len())
            }
            _ => 0,
        };
        let at = |randomized| {
            let (extra, what) = if shuffle > 0 {
                (shuffle, "a preshuffled dataset's cells")
            } else {
                scratch(node, &input, k, genes, workers, randomized)
            };
            (held(&input, k).max(out) + copied_obs + extra + others, what)
        };
        let (mut peak, mut what) = at(false);
        if let Op::Pca(p) = &node.op
            && p.svd_solver == SvdSolver::Auto
            && peak + MIN_BLOCK_BUDGET > limit
        {
            let (low, w) = at(true);
            if low < peak {
                randomized_pca.push((id, peak));
                (peak, what) = (low, w);
            }
        }
        if peak > best.peak {
            best = MemoryEstimate {
                peak,
                step: node.step.clone(),
                what,
                randomized_pca: Vec::new(),
            };
        }
    }
    best.randomized_pca = randomized_pca;
    best
}

/// Megabytes for messages, rounded up.
pub fn mib(bytes: usize) -> usize {
    bytes.div_ceil(1 << 20)
}
