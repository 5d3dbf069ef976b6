//! Graph IR: static shapes and dtypes, a closed `Op` enum, one validation step.

mod graph;
mod op;
mod quant;
mod stats;
mod tensor;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use graph::{Graph, Node, Value, ValueId};
pub use op::{
    broadcast_shapes, einsum_sizes, exp, sigmoid, tanh, window_out_len, AxisSlice, BinaryOp,
    BitwiseOp, Cell, CompareOp, ConvGeometry, CoordTransform, Direction, NearestMode, Nms, Op,
    PadMode, PoolGeometry, PoolKind, Recurrent, ReduceKind, ResizeMode, ScatterReduction, Trig,
    TypeInfo, UnaryOp,
};
pub use quant::Quant;
pub use stats::{inspect_totals, node_activations, node_params, Totals};
pub use tensor::{checked_numel, numel, DType, SharedF32, Tensor, TensorData, MAX_TENSOR_ELEMENTS};
