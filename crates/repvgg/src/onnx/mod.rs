//! ONNX export of the deployed (plain, re-parameterized) network: [`to_onnx`] writes the bytes
//! of a `.onnx` file, [`to_model`] the same model as [`proto::ModelProto`].
//!
//! The model targets **opset 17** of the default `ai.onnx` domain and **IR version 8**, with
//! `producer_name = "reparam"`. It uses seven operators: `Conv`, `Relu`, `GlobalAveragePool`,
//! `Sigmoid`, `Mul`, `Flatten` and `Gemm`. The graph computes exactly what
//! [`Graph::plain`](crate::Graph::plain) computes:
//!
//! ```text
//! input  f32 [batch, C_in, height, width]           (C_in = config.in_channels, 3)
//! per block, in execution order:
//!   Conv(kernel 3x3, pads 1, strides s, group g, bias)          (the fused K and b)
//!   only with SE (D2se): the squeeze-excitation on the pre-activation y,
//!     GlobalAveragePool(y) → Conv 1x1 + bias → Relu → Conv 1x1 + bias → Sigmoid → Mul(y, ·)
//!   Relu
//! GlobalAveragePool → Flatten(axis 1) → Gemm(transB = 1, bias)
//! logits f32 [batch, classes]
//! ```
//!
//! `batch`, `height` and `width` are symbolic dimensions, so one file runs any batch and image
//! size. SE sits before the block's ReLU, as in the reference executor (`exec/reference.rs`) and
//! the D2se block; its pooling is a true global average over the block's output.
//!
//! Weights are `float_data` initializers named by the official checkpoint keys:
//! `{block}.rbr_reparam.{weight,bias}` (block `stage0` or `stage{k}.{j}`),
//! `{block}.se.{down,up}.{weight,bias}`, and `linear.{weight,bias}` with the classifier weight
//! stored `[classes, features]`. Nodes are named after the same prefixes
//! (`stage1.0.rbr_reparam`, `stage1.0.se.up`, `stage1.0.relu`, `head.pool`, …); each node's
//! output value has its node's name, except the last one, `logits`.

pub mod proto;

use crate::error::Error;
use crate::graph::validate;
use crate::net::{PlainBlock, PlainNet, SeWeights};
use proto::tensor_shape_proto::{Dimension, dimension};
use proto::{
    AttributeProto, AttributeType, DATA_TYPE_FLOAT, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use reparam_tensor::TensorError;

/// The `ai.onnx` opset version the exported model imports.
pub const OPSET_VERSION: i64 = 17;

/// The ONNX IR version of the exported model.
pub const IR_VERSION: i64 = 8;

/// `ModelProto.producer_name` of the exported model.
pub const PRODUCER_NAME: &str = "reparam";

/// Name of the graph input, `f32 [batch, C_in, height, width]`.
pub const INPUT_NAME: &str = "input";

/// Name of the graph output, `f32 [batch, classes]`.
pub const OUTPUT_NAME: &str = "logits";

/// The bytes of a `.onnx` file holding `net` (graph and naming in the [module docs](self)).
///
/// Fails with the typed error of the crate's structural checks when `net` is malformed (a
/// tensor's shape disagrees with its block's spec, a non-finite weight, blocks that do not match
/// the config); never panics.
pub fn to_onnx(net: &PlainNet) -> Result<Vec<u8>, Error> {
    Ok(to_model(net)?.to_bytes())
}

/// `net` as an ONNX [`ModelProto`] (graph and naming in the [module docs](self)); fails as
/// [`to_onnx`] does.
pub fn to_model(net: &PlainNet) -> Result<ModelProto, Error> {
    validate::plain_net(net)?;
    let mut graph = Builder::default();
    let mut x = INPUT_NAME.to_string();
    for block in &net.blocks {
        x = graph.block(x, block)?;
    }
    let [classes, features, _, _] = net.head.weight.shape();
    let pooled = graph.node("GlobalAveragePool", "head.pool", vec![x], Vec::new());
    let flat = graph.node(
        "Flatten",
        "head.flatten",
        vec![pooled],
        vec![int("axis", 1)],
    );
    let weight = graph.initializer(
        "linear.weight",
        &[classes, features],
        net.head.weight.data(),
    )?;
    let bias = graph.initializer("linear.bias", &[classes], &net.head.bias)?;
    graph.node(
        "Gemm",
        OUTPUT_NAME,
        vec![flat, weight, bias],
        vec![int("transB", 1)],
    );

    let batch = || symbolic("batch");
    let input = value_info(
        INPUT_NAME,
        vec![
            batch(),
            fixed(net.config.in_channels)?,
            symbolic("height"),
            symbolic("width"),
        ],
    );
    let output = value_info(OUTPUT_NAME, vec![batch(), fixed(classes)?]);
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET_VERSION),
        }],
        producer_name: Some(PRODUCER_NAME.to_string()),
        producer_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        doc_string: Some(format!(
            "{}, deployed (re-parameterized) form, exported by reparam",
            net.config.name
        )),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: Some(net.config.name.clone()),
            initializer: graph.initializers,
            input: vec![input],
            output: vec![output],
        }),
    })
}

/// Nodes and initializers in the order they are added.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Builder {
    /// Appends a node of the default domain named `name` whose one output value is also called
    /// `name`; returns that value's name.
    fn node(
        &mut self,
        op_type: &str,
        name: &str,
        input: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input,
            output: vec![name.to_string()],
            name: Some(name.to_string()),
            op_type: Some(op_type.to_string()),
            attribute,
            domain: None,
        });
        name.to_string()
    }

    /// Adds a float initializer of shape `dims` (row-major `data`); returns its name.
    fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Result<String, Error> {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| to_i64(d)).collect::<Result<_, _>>()?,
            data_type: Some(DATA_TYPE_FLOAT),
            float_data: data.to_vec(),
            name: Some(name.to_string()),
        });
        Ok(name.to_string())
    }

    /// `Conv 3x3 (+bias) [→ SE] → Relu` of one block on `x`; returns the block's output.
    fn block(&mut self, x: String, block: &PlainBlock) -> Result<String, Error> {
        let prefix = block.spec.official_prefix();
        let conv_name = format!("{prefix}.rbr_reparam");
        let weight = self.initializer(
            &format!("{conv_name}.weight"),
            &block.weight.shape(),
            block.weight.data(),
        )?;
        let bias = self.initializer(
            &format!("{conv_name}.bias"),
            &[block.bias.len()],
            &block.bias,
        )?;
        let spec = block.spec.conv3x3();
        let stride = to_i64(spec.stride)?;
        let pad = to_i64(spec.padding)?;
        let pre = self.node(
            "Conv",
            &conv_name,
            vec![x, weight, bias],
            vec![
                ints("kernel_shape", vec![3, 3]),
                ints("pads", vec![pad; 4]),
                ints("strides", vec![stride, stride]),
                ints("dilations", vec![1, 1]),
                int("group", to_i64(spec.groups)?),
            ],
        );
        let pre = match &block.se {
            Some(se) => self.squeeze_excite(&format!("{prefix}.se"), pre, se)?,
            None => pre,
        };
        Ok(self.node("Relu", &format!("{prefix}.relu"), vec![pre], Vec::new()))
    }

    /// `y·sigmoid(W_up·ReLU(W_down·mean_{h,w} y + b_down) + b_up)` per channel, named `{name}.*`.
    fn squeeze_excite(&mut self, name: &str, y: String, se: &SeWeights) -> Result<String, Error> {
        let pooled = self.node(
            "GlobalAveragePool",
            &format!("{name}.pool"),
            vec![y.clone()],
            Vec::new(),
        );
        let down = self.pointwise(
            &format!("{name}.down"),
            pooled,
            &se.down_weight.shape(),
            (se.down_weight.data(), &se.down_bias),
        )?;
        let z = self.node("Relu", &format!("{name}.relu"), vec![down], Vec::new());
        let up = self.pointwise(
            &format!("{name}.up"),
            z,
            &se.up_weight.shape(),
            (se.up_weight.data(), &se.up_bias),
        )?;
        let s = self.node("Sigmoid", &format!("{name}.sigmoid"), vec![up], Vec::new());
        Ok(self.node("Mul", name, vec![y, s], Vec::new()))
    }

    /// A 1x1 `Conv` with bias on `x`, weight `[C_out, C_in, 1, 1]`, named `name`.
    fn pointwise(
        &mut self,
        name: &str,
        x: String,
        shape: &[usize],
        (weight, bias): (&[f32], &[f32]),
    ) -> Result<String, Error> {
        let weight = self.initializer(&format!("{name}.weight"), shape, weight)?;
        let bias = self.initializer(&format!("{name}.bias"), &[bias.len()], bias)?;
        Ok(self.node(
            "Conv",
            name,
            vec![x, weight, bias],
            vec![ints("kernel_shape", vec![1, 1])],
        ))
    }
}

/// An `INT` attribute.
fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ints: Vec::new(),
    }
}

/// An `INTS` attribute.
fn ints(name: &str, values: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Ints as i32),
        i: None,
        ints: values,
    }
}

/// A symbolic dimension (`dim_param`).
fn symbolic(name: &str) -> Dimension {
    Dimension {
        value: Some(dimension::Value::DimParam(name.to_string())),
    }
}

/// A fixed dimension (`dim_value`).
fn fixed(size: usize) -> Result<Dimension, Error> {
    Ok(Dimension {
        value: Some(dimension::Value::DimValue(to_i64(size)?)),
    })
}

/// A graph input or output: an f32 tensor of the given dimensions.
fn value_info(name: &str, dim: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DATA_TYPE_FLOAT),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
    }
}

/// A size as protobuf's `int64` (sizes of tensors in memory always fit; the error is typed all
/// the same).
fn to_i64(size: usize) -> Result<i64, Error> {
    i64::try_from(size).map_err(|_| {
        Error::Tensor(TensorError::invalid(
            "onnx",
            format!("size {size} does not fit an ONNX int64"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StageConfig};
    use crate::net::TrainNet;

    /// A small plain net: stem 8, stages 8/16 of depths 2/2 with one grouped (g = 2) block,
    /// 5 classes, SE (reduction 4) when `se`.
    fn small_net(se: bool) -> PlainNet {
        let config = Config::custom(
            8,
            vec![
                StageConfig::dense(8, 2),
                StageConfig {
                    width: 16,
                    groups: vec![1, 2],
                },
            ],
            5,
            se.then_some(4),
        )
        .expect("config");
        crate::fuse(&TrainNet::random(&config, 3)).expect("fuse")
    }

    fn decode(net: &PlainNet) -> (ModelProto, GraphProto) {
        let model = ModelProto::from_bytes(&to_onnx(net).expect("export")).expect("decode");
        let graph = model.graph.clone().expect("graph");
        (model, graph)
    }

    fn op_types(graph: &GraphProto) -> Vec<&str> {
        graph
            .node
            .iter()
            .map(|n| n.op_type.as_deref().unwrap_or(""))
            .collect()
    }

    fn attribute<'a>(node: &'a NodeProto, name: &str) -> &'a AttributeProto {
        node.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{:?} lacks `{name}`", node.name))
    }

    fn dims(value: &ValueInfoProto) -> Vec<dimension::Value> {
        let Some(type_proto::Value::TensorType(t)) =
            value.r#type.as_ref().and_then(|t| t.value.clone())
        else {
            panic!("{:?} is not a tensor", value.name)
        };
        assert_eq!(t.elem_type, Some(DATA_TYPE_FLOAT));
        t.shape
            .expect("shape")
            .dim
            .into_iter()
            .map(|d| d.value.expect("dim value"))
            .collect()
    }

    #[test]
    fn model_header_opset_and_io() {
        let (model, graph) = decode(&small_net(false));
        assert_eq!(model.ir_version, Some(8));
        assert_eq!(model.producer_name.as_deref(), Some("reparam"));
        assert_eq!(
            model.opset_import,
            [OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17)
            }]
        );
        let param = |s: &str| dimension::Value::DimParam(s.to_string());
        assert_eq!(graph.input.len(), 1);
        assert_eq!(graph.input[0].name.as_deref(), Some("input"));
        assert_eq!(
            dims(&graph.input[0]),
            [
                param("batch"),
                dimension::Value::DimValue(3),
                param("height"),
                param("width")
            ]
        );
        assert_eq!(graph.output.len(), 1);
        assert_eq!(graph.output[0].name.as_deref(), Some("logits"));
        assert_eq!(
            dims(&graph.output[0]),
            [param("batch"), dimension::Value::DimValue(5)]
        );
        let last = graph.node.last().expect("nodes");
        assert_eq!(last.output, ["logits"]);
    }

    #[test]
    fn plain_blocks_are_conv_relu_then_the_head() {
        let net = small_net(false);
        let (_, graph) = decode(&net);
        let mut want = Vec::new();
        for _ in &net.blocks {
            want.extend(["Conv", "Relu"]);
        }
        want.extend(["GlobalAveragePool", "Flatten", "Gemm"]);
        assert_eq!(op_types(&graph), want);

        // Each value is read by the next node; Conv attributes follow the block spec.
        for pair in graph.node.windows(2) {
            assert_eq!(pair[1].input[0], pair[0].output[0], "{:?}", pair[1].name);
        }
        assert_eq!(graph.node[0].input[0], "input");
        for (block, conv) in net.blocks.iter().zip(graph.node.iter().step_by(2)) {
            let s = block.spec.stride as i64;
            assert_eq!(attribute(conv, "strides").ints, [s, s]);
            assert_eq!(attribute(conv, "pads").ints, [1, 1, 1, 1]);
            assert_eq!(attribute(conv, "kernel_shape").ints, [3, 3]);
            assert_eq!(attribute(conv, "group").i, Some(block.spec.groups as i64));
        }
        assert!(net.blocks.iter().any(|b| b.spec.groups == 2));
        assert!(net.blocks.iter().any(|b| b.spec.stride == 2));
        let gemm = graph.node.last().expect("gemm");
        assert_eq!(attribute(gemm, "transB").i, Some(1));

        // Initializers: weight and bias per block, then the classifier, with the net's values.
        let mut want: Vec<(String, Vec<i64>, Vec<f32>)> = Vec::new();
        for block in &net.blocks {
            let p = block.spec.official_prefix();
            let shape = block.weight.shape().map(|d| d as i64).to_vec();
            want.push((
                format!("{p}.rbr_reparam.weight"),
                shape,
                block.weight.data().to_vec(),
            ));
            want.push((
                format!("{p}.rbr_reparam.bias"),
                vec![block.bias.len() as i64],
                block.bias.clone(),
            ));
        }
        want.push((
            "linear.weight".into(),
            vec![5, 16],
            net.head.weight.data().to_vec(),
        ));
        want.push(("linear.bias".into(), vec![5], net.head.bias.clone()));
        let got: Vec<(String, Vec<i64>, Vec<f32>)> = graph
            .initializer
            .iter()
            .map(|t| {
                assert_eq!(t.data_type, Some(DATA_TYPE_FLOAT));
                (
                    t.name.clone().expect("name"),
                    t.dims.clone(),
                    t.float_data.clone(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn se_blocks_squeeze_and_excite_before_the_relu() {
        let net = small_net(true);
        let (_, graph) = decode(&net);
        let mut want = Vec::new();
        for _ in &net.blocks {
            want.extend([
                "Conv",
                "GlobalAveragePool",
                "Conv",
                "Relu",
                "Conv",
                "Sigmoid",
                "Mul",
                "Relu",
            ]);
        }
        want.extend(["GlobalAveragePool", "Flatten", "Gemm"]);
        assert_eq!(op_types(&graph), want);

        // The Mul scales the block's conv output by the sigmoid; the ReLU reads the Mul.
        let first = &graph.node[..8];
        assert_eq!(
            first[6].input,
            [first[0].output[0].clone(), first[5].output[0].clone()]
        );
        assert_eq!(first[7].input, first[6].output);
        assert_eq!(first[1].input, first[0].output);

        let shapes: Vec<(&str, &[i64])> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_deref().unwrap_or(""), &t.dims[..]))
            .collect();
        let block = &net.blocks[1];
        let se = block.se.as_ref().expect("se");
        let [hidden, channels, _, _] = se.down_weight.shape();
        let (h, c) = (hidden as i64, channels as i64);
        let expected: [(&str, &[i64]); 6] = [
            ("stage1.0.rbr_reparam.weight", &[c, c, 3, 3]),
            ("stage1.0.rbr_reparam.bias", &[c]),
            ("stage1.0.se.down.weight", &[h, c, 1, 1]),
            ("stage1.0.se.down.bias", &[h]),
            ("stage1.0.se.up.weight", &[c, h, 1, 1]),
            ("stage1.0.se.up.bias", &[c]),
        ];
        assert_eq!(&shapes[6..12], &expected);
        assert_eq!(h, 2);
        assert_eq!(shapes.len(), 6 * net.blocks.len() + 2);
    }

    #[test]
    fn full_size_a0_has_two_nodes_and_two_initializers_per_block() {
        let net =
            crate::fuse(&TrainNet::random(&Config::official("a0").expect("a0"), 1)).expect("fuse");
        assert_eq!(net.blocks.len(), 22);
        let (_, graph) = decode(&net);
        assert_eq!(graph.node.len(), 2 * 22 + 3);
        assert_eq!(graph.initializer.len(), 2 * 22 + 2);
        let params: usize = graph.initializer.iter().map(|t| t.float_data.len()).sum();
        // RepVGG-A0's deployed parameter count (as in `stats`' tests).
        assert_eq!(params, 8_309_384);
    }

    #[test]
    fn a_malformed_net_is_an_error_not_a_panic() {
        let mut net = small_net(true);
        net.blocks[2].bias.pop();
        let e = to_onnx(&net).unwrap_err().to_string();
        assert!(e.contains("stage1.1"), "{e}");

        let mut net = small_net(false);
        net.head.weight.data_mut()[0] = f32::NAN;
        assert!(to_onnx(&net).is_err());

        let mut net = small_net(false);
        net.blocks.pop();
        assert!(to_onnx(&net).is_err());
    }
}
