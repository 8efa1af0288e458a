//! Preshuffling for model training (issue 19): `engine preshuffle` and the `preshuffle` step
//! write a collection annbatch's `DatasetCollection` and `Loader` open; one epoch of the
//! loader yields every cell exactly once, each equal to its source row; the same seed writes
//! the same collection; any upstream steps (a filtered, normalised concatenation) feed it.

use engine_tests::{concat_parts, engine_code, engine_ok, python_ok, scratch};

/// Python that iterates one epoch of annbatch's `Loader` over `coll` and checks every cell
/// against `expected(src_path, name)` (a row over the loader's genes).
const EPOCH: &str = "import numpy as np, anndata as ad, scipy.sparse as sp\n\
    from annbatch import DatasetCollection, Loader\n\
    def epoch(coll, expected, n):\n\
    \x20   loader = Loader(batch_size=8, chunk_size=8, preload_nchunks=2, shuffle=True, return_index=True,\n\
    \x20       preload_to_gpu=False, rng=np.random.default_rng(0)).use_collection(DatasetCollection(coll, mode='r'))\n\
    \x20   seen = []\n\
    \x20   for b in loader:\n\
    \x20       X, obs, var = b['X'], b['obs'], b['var'].index\n\
    \x20       for i, (name, src) in enumerate(zip(obs.index, obs['src_path'])):\n\
    \x20           got = X[i].toarray()[0] if sp.issparse(X) else X[i]\n\
    \x20           want = expected(src, name, var)\n\
    \x20           np.testing.assert_allclose(got, want.astype(got.dtype), rtol=1e-6, err_msg=f'{src} {name}')\n\
    \x20       seen += list(zip(obs['src_path'], obs.index))\n\
    \x20   assert len(seen) == len(set(seen)) == n, (len(seen), len(set(seen)), n)\n";

/// `engine preshuffle a b c coll.zarr`: annbatch's Loader yields each cell once with its
/// source values (genes outer-joined, absent ones 0); datasets hold `dataset_size` cells in
/// whole blocks; X is sharded as asked; the same seed gives the same bytes, another seed
/// another order.
#[test]
fn annbatch_reads_every_cell_once() {
    let dir = scratch("preshuffle-cli");
    concat_parts(&dir);
    let d = dir.display().to_string();
    let run = |out: &str, seed: &str| {
        engine_ok(&[
            "preshuffle",
            &format!("{d}/a.h5ad"),
            &format!("{d}/b.zarr"),
            &format!("{d}/c.h5ad"),
            &format!("{d}/{out}"),
            "--dataset-size",
            "40",
            "--shuffle-chunk-size",
            "10",
            "--n-obs-per-chunk",
            "8",
            "--shard-size",
            "16",
            "--seed",
            seed,
        ]);
    };
    run("coll.zarr", "3");
    run("same.zarr", "3");
    run("other.zarr", "4");
    python_ok(&format!(
        "{EPOCH}\
         import zarr\n\
         d = '{d}'\n\
         src = {{d + '/a.h5ad': ad.read_h5ad(d + '/a.h5ad'), d + '/b.zarr': ad.read_zarr(d + '/b.zarr'), d + '/c.h5ad': ad.read_h5ad(d + '/c.h5ad')}}\n\
         epoch(d + '/coll.zarr', lambda s, name, var: src[s][name].to_df().reindex(columns=var, fill_value=0).to_numpy()[0], 95)\n\
         g = zarr.open_group(d + '/coll.zarr', mode='r')\n\
         assert dict(g.attrs) == {{'encoding-type': 'annbatch-preshuffled', 'encoding-version': '0.1.0'}}\n\
         sizes = sorted(g[k]['X'].attrs['shape'][0] for k in g.group_keys())\n\
         # 95 cells in blocks of 10 (one of 5), four blocks a dataset.\n\
         assert sizes in ([15, 40, 40], [20, 35, 40]), sizes\n\
         x = g['dataset_0']['X']['data']\n\
         assert x.shards is not None and x.shards[0] >= x.chunks[0], (x.shards, x.chunks)\n\
         for k in sorted(g.group_keys()):\n\
         \x20   a, b = ad.read_zarr(f'{{d}}/coll.zarr/{{k}}'), ad.read_zarr(f'{{d}}/same.zarr/{{k}}')\n\
         \x20   assert list(a.obs_names) == list(b.obs_names) and (a.X != b.X).nnz == 0, k\n\
         order = lambda c: [(s, n) for k in sorted(zarr.open_group(f'{{d}}/{{c}}', mode='r').group_keys()) for s, n in zip(ad.read_zarr(f'{{d}}/{{c}}/{{k}}').obs['src_path'], ad.read_zarr(f'{{d}}/{{c}}/{{k}}').obs_names)]\n\
         assert order('coll.zarr') != order('other.zarr')\n\
         assert sorted(order('coll.zarr')) == sorted(order('other.zarr'))\n"
    ));
}

/// A preshuffle fed by a filtered, normalised, log-transformed concatenation, each dataset
/// grouped by cell type: the loader's values are anndata + scanpy's on the same cells.
#[test]
fn a_query_feeds_a_preshuffle() {
    let dir = scratch("preshuffle-query");
    concat_parts(&dir);
    let d = dir.display().to_string();
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n\
             \x20 - {{id: a, op: read, path: '{d}/a.h5ad'}}\n\
             \x20 - {{id: b, op: read, path: '{d}/b.zarr'}}\n\
             \x20 - {{id: c, op: read, path: '{d}/c.h5ad'}}\n\
             \x20 - {{id: all, op: concat, inputs: [a, b, c], join: outer, label: src_path, keys: [a, b, c], index_unique: '-'}}\n\
             \x20 - {{id: kept, op: select, input: all, where: \"n_genes >= 2\"}}\n\
             \x20 - {{id: norm, op: normalize_total, input: kept, target_sum: 100}}\n\
             \x20 - {{id: logged, op: log1p, input: norm}}\n\
             \x20 - {{id: shuffled, op: preshuffle, input: logged, path: '{d}/coll.zarr', dataset_size: '30', shuffle_chunk_size: 5, n_obs_per_chunk: 4, groupby: cell_type, seed: 1}}\n"
        ),
    )
    .unwrap();
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "{EPOCH}\
         import scanpy as sc, zarr\n\
         d = '{d}'\n\
         w = ad.concat([ad.read_h5ad(d + '/a.h5ad'), ad.read_zarr(d + '/b.zarr'), ad.read_h5ad(d + '/c.h5ad')], join='outer', label='src_path', keys=['a', 'b', 'c'], index_unique='-')\n\
         w = w[w.obs.n_genes >= 2].copy()\n\
         sc.pp.normalize_total(w, target_sum=100)\n\
         sc.pp.log1p(w)\n\
         rows = {{n: i for i, n in enumerate(w.obs_names)}}\n\
         dense = w.X.toarray()\n\
         epoch(d + '/coll.zarr', lambda s, name, var: dense[rows[name]][[list(w.var_names).index(v) for v in var]], w.n_obs)\n\
         g = zarr.open_group(d + '/coll.zarr', mode='r')\n\
         for k in g.group_keys():\n\
         \x20   t = ad.read_zarr(f'{{d}}/coll.zarr/{{k}}').obs['cell_type']\n\
         \x20   codes = [list(t.cat.categories).index(v) for v in t]\n\
         \x20   assert codes == sorted(codes), (k, list(t))\n"
    ));
}

/// What `check` refuses before any data is read.
#[test]
fn check_refuses_bad_collections() {
    let dir = scratch("preshuffle-check");
    concat_parts(&dir);
    for (args, want) in [
        ("path: out.h5ad", "must end in .zarr"),
        (
            "path: o.zarr, dataset_size: '10', shuffle_chunk_size: 20",
            "must not exceed `dataset_size`",
        ),
        ("path: o.zarr, groupby: nope", "no obs['nope']"),
        (
            "path: o.zarr, dataset_size: lots",
            "`dataset_size` is a number of cells",
        ),
        ("path: o.zarr, compression: zip", "`compression`"),
    ] {
        let p = dir.join("bad.yaml");
        std::fs::write(
            &p,
            format!(
                "version: 1\nsteps:\n  - {{id: a, op: read, path: '{}/a.h5ad'}}\n  - {{id: s, op: preshuffle, input: a, {args}}}\n",
                dir.display()
            ),
        )
        .unwrap();
        let (code, err) = engine_code(&["check", p.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{args}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:4:"),
            "{args}: {err}"
        );
    }
}

/// The Rust loader over a collection: one epoch draws every cell once, each batch's rows are
/// the collection's rows at its indices (read back by anndata), batches are `batch_size`
/// but the last, the same seed draws the same batches, and a preload that does not split
/// into whole batches is refused as annbatch refuses it. Over our collection, annbatch's (its
/// indices 16-bit) and one compressed with zstd: the first two decoded straight into the
/// loads' buffers, the third through zarrs.
#[test]
fn the_rust_loader_draws_every_cell_once() {
    let dir = scratch("preshuffle-loader");
    concat_parts(&dir);
    let d = dir.display().to_string();
    engine_ok(&[
        "preshuffle",
        &format!("{d}/a.h5ad"),
        &format!("{d}/b.zarr"),
        &format!("{d}/c.h5ad"),
        &format!("{d}/coll.zarr"),
        "--dataset-size",
        "40",
        "--shuffle-chunk-size",
        "10",
        "--seed",
        "2",
    ]);
    python_ok(&format!(
        "import numpy as np\n\
         from annbatch import DatasetCollection\n\
         DatasetCollection('{d}/theirs.zarr').add_adatas(['{d}/a.h5ad'], shuffle=True, rng=np.random.default_rng(0))\n"
    ));
    let yaml = dir.join("zstd.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: a, op: read, path: '{d}/a.h5ad'}}\n  - {{id: p, op: preshuffle, input: a, path: '{d}/zstd.zarr', dataset_size: '16', shuffle_chunk_size: 4, compression: 'zstd:3'}}\n"
        ),
    )
    .unwrap();
    engine_ok(&["run", yaml.to_str().unwrap()]);
    for (coll, n, direct) in [
        ("coll.zarr", 95, true),
        ("theirs.zarr", 40, true),
        ("zstd.zarr", 40, false),
    ] {
        loader_matches_anndata(&dir, coll, n, direct);
    }
    // A damaged inner chunk is an error naming the array, not a panic or wrong values.
    let shard = dir.join("coll.zarr/dataset_0/X/data/c/0");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[..16].fill(0xff);
    std::fs::write(&shard, bytes).unwrap();
    let c = engine_loader::Collection::open(&dir.join("coll.zarr")).unwrap();
    let o = engine_loader::LoaderOptions {
        batch_size: 8,
        chunk_size: 8,
        preload_nchunks: 2,
        ..Default::default()
    };
    let err = engine_loader::for_each_batch(&c, &o, |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dataset_0") && err.contains("/X/data") && err.contains("corrupt"),
        "{err}"
    );
}

/// One epoch of the Rust loader over `dir/coll` against anndata's reading of the collection.
fn loader_matches_anndata(dir: &std::path::Path, coll: &str, n_obs: usize, direct: bool) {
    use engine_loader::{Collection, LoaderOptions, for_each_batch};
    use engine_matrix::Block;
    let d = dir.display().to_string();
    let c = Collection::open(&dir.join(coll)).unwrap();
    assert_eq!(c.n_obs(), n_obs, "{coll}");
    assert_eq!(c.reads_directly(), direct, "{coll}");
    let m = c.n_vars();
    let draw = |seed: u64| {
        let o = LoaderOptions {
            batch_size: 6,
            chunk_size: 8,
            preload_nchunks: 3,
            seed,
            ..Default::default()
        };
        let (mut index, mut rows, mut sizes): (Vec<usize>, Vec<f64>, Vec<usize>) =
            (Vec::new(), Vec::new(), Vec::new());
        for_each_batch(&c, &o, |b| {
            sizes.push(b.index.len());
            index.extend(&b.index);
            let Block::Sparse(x) = &b.x else {
                panic!("the collection's X is sparse");
            };
            let values = x.data.to_f64_vec().unwrap();
            for r in 0..x.shape[0] {
                let mut row = vec![0f64; m];
                for k in x.indptr[r] as usize..x.indptr[r + 1] as usize {
                    row[x.indices[k] as usize] = values[k];
                }
                rows.extend(row);
            }
            Ok(())
        })
        .unwrap();
        (index, rows, sizes)
    };
    let (index, rows, sizes) = draw(9);
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&s| s == 6),
        "{coll}: {sizes:?}"
    );
    assert_eq!(draw(9).0, index);
    assert_ne!(draw(10).0, index);
    let uneven = LoaderOptions {
        batch_size: 7,
        chunk_size: 8,
        preload_nchunks: 3,
        ..Default::default()
    };
    let err = for_each_batch(&c, &uneven, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("multiple of batch_size"), "{err}");
    let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("rows.bin"), bytes).unwrap();
    std::fs::write(
        dir.join("index.txt"),
        index.iter().map(|i| format!("{i}\n")).collect::<String>(),
    )
    .unwrap();
    python_ok(&format!(
        "import numpy as np, anndata as ad, scipy.sparse as sp, zarr\n\
         d = '{d}'\n\
         keys = sorted(zarr.open_group(d + '/{coll}', mode='r').group_keys(), key=lambda k: int(k.split('_')[1]))\n\
         X = sp.vstack([ad.read_zarr(f'{{d}}/{coll}/{{k}}').X for k in keys]).toarray()\n\
         idx = np.loadtxt(d + '/index.txt', dtype=int)\n\
         rows = np.fromfile(d + '/rows.bin', dtype='<f8').reshape(len(idx), -1)\n\
         assert sorted(idx) == list(range(X.shape[0]))\n\
         np.testing.assert_array_equal(rows, X[idx])\n"
    ));
}
