//! `where:` predicates over an obs frame with every column kind: any text gives a mask or an
//! error, never a panic or a stack overflow.
#![no_main]
use engine_matrix::DynArray;
use engine_store::value::{Column, Frame};
use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, ArrayD};
use std::sync::OnceLock;

fn arr<T>(v: Vec<T>) -> ArrayD<T> {
    Array1::from(v).into_dyn()
}

fn frame() -> &'static Frame {
    static F: OnceLock<Frame> = OnceLock::new();
    F.get_or_init(|| Frame {
        index_name: "_index".into(),
        index: Column::Plain(DynArray::Str(arr(vec!["a".into(), "b".into(), "c".into()]))),
        columns: vec![
            (
                "n_genes".into(),
                Column::Plain(DynArray::I64(arr(vec![1, 200, -3]))),
            ),
            (
                "pct_counts_mt".into(),
                Column::Plain(DynArray::F32(arr(vec![0.5, f32::NAN, 30.0]))),
            ),
            (
                "ok".into(),
                Column::Plain(DynArray::Bool(arr(vec![true, false, true]))),
            ),
            (
                "cell_type".into(),
                Column::Categorical {
                    codes: DynArray::I8(arr(vec![0, -1, 1])),
                    categories: DynArray::Str(arr(vec!["B".into(), "T cell".into()])),
                    ordered: false,
                },
            ),
            (
                "batch".into(),
                Column::Nullable {
                    values: DynArray::Str(arr(vec!["x".into(), String::new(), "y".into()])),
                    mask: vec![false, true, false],
                    na_value: None,
                },
            ),
        ],
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mask) = engine_sql::mask_frame(frame(), false, text) {
        assert_eq!(mask.len(), 3);
    }
});
