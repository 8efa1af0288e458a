//! The order a plan's nodes run in: the plan's order, except that a sink (an output or a
//! plot) runs as soon as its inputs exist. The values it reads are then not held through
//! the steps after them (an output of `logged` kept its frames through kNN and UMAP), and the
//! memory estimate walks the same order as the driver.

/// Node positions in running order. `inputs[i]` are node `i`'s inputs (earlier positions);
/// `sink[i]` says it produces no value. Every node appears once.
pub fn running_order(inputs: &[Vec<usize>], sink: &[bool]) -> Vec<usize> {
    let n = inputs.len();
    // Sinks grouped by the last of their inputs; a sink without inputs runs first.
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut first = Vec::new();
    for i in (0..n).filter(|&i| sink[i]) {
        match inputs[i].iter().copied().filter(|&j| j < i).max() {
            Some(j) if !sink[j] => after[j].push(i),
            _ => first.push(i),
        }
    }
    let mut order = first;
    for i in (0..n).filter(|&i| !sink[i]) {
        order.push(i);
        order.extend_from_slice(&after[i]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scan -> a -> b -> c, with an output of `a` listed last and a plot of `c`: the output
    /// moves up behind `a`, the plot stays behind `c`.
    #[test]
    fn sinks_run_as_soon_as_their_input_exists() {
        let inputs = vec![vec![], vec![0], vec![1], vec![2], vec![3], vec![1]];
        let sink = [false, false, false, false, true, true];
        assert_eq!(running_order(&inputs, &sink), vec![0, 1, 5, 2, 3, 4]);
    }

    /// A sink reading two values runs after the later one.
    #[test]
    fn a_sink_waits_for_its_last_input() {
        let inputs = vec![vec![], vec![0], vec![0], vec![2, 1]];
        let sink = [false, false, false, true];
        assert_eq!(running_order(&inputs, &sink), vec![0, 1, 2, 3]);
        let inputs = vec![vec![], vec![0], vec![0], vec![1, 0]];
        assert_eq!(running_order(&inputs, &sink), vec![0, 1, 3, 2]);
    }
}
