//! The subset of `onnx.proto` (package `onnx`, proto2) that [`super::to_onnx`] writes, declared
//! with prost's derive so no `protoc` or build script is needed.
//!
//! Field numbers, wire types and packing are those of the official `onnx/onnx.proto`; fields
//! this crate never writes are left out (a decoder skips unknown fields, so files written by
//! other tools still decode into these structs, minus those fields). proto2 `optional` scalars
//! are `Option`s so presence round-trips; repeated scalars are unpacked unless `onnx.proto`
//! declares them `[packed = true]` (of the fields here, only `TensorProto.float_data`).

/// `ModelProto`: the top-level container of an ONNX file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// `ir_version = 1`: the IR version the model targets.
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    /// `opset_import = 8`: the operator sets the graph binds against.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// `producer_name = 2`: the tool that wrote the model.
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    /// `producer_version = 3`: its version.
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    /// `doc_string = 6`: human-readable documentation.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// `graph = 7`: the computation graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

impl ModelProto {
    /// The protobuf encoding of the model: the bytes of a `.onnx` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Decodes the bytes of a `.onnx` file (the fields of this subset; others are skipped).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        prost::Message::decode(bytes)
    }
}

/// `OperatorSetIdProto`: one imported operator set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// `domain = 1`: empty (or absent) for the default `ai.onnx` domain.
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    /// `version = 2`: the opset version.
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

/// `GraphProto`: nodes in topological order, initializers, inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// `node = 1`: the nodes, sorted topologically.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// `name = 2`: the graph's name.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// `initializer = 5`: constant tensors (the weights).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// `input = 11`: the graph inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// `output = 12`: the graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// `input = 1`: names of the values read, in operand order.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// `output = 2`: names of the values defined.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// `name = 3`: the node's name.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// `op_type = 4`: the operator, e.g. `Conv`.
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    /// `attribute = 5`: the operator's attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// `domain = 7`: the operator set's domain (absent: `ai.onnx`).
    #[prost(string, optional, tag = "7")]
    pub domain: Option<String>,
}

/// `AttributeProto.AttributeType`: which value field of an attribute is set (the kinds this
/// crate writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AttributeType {
    /// `UNDEFINED = 0`.
    Undefined = 0,
    /// `INT = 2`: the `i` field.
    Int = 2,
    /// `INTS = 7`: the `ints` field.
    Ints = 7,
}

/// `AttributeProto`: a named attribute of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// `name = 1`: the attribute's name, e.g. `strides`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `type = 20`: which value field is set.
    #[prost(enumeration = "AttributeType", optional, tag = "20")]
    pub r#type: Option<i32>,
    /// `i = 3`: a single integer.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// `ints = 8`: a list of integers (unpacked, as in `onnx.proto`).
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
}

/// `TensorProto.DataType::FLOAT`: IEEE 754 binary32.
pub const DATA_TYPE_FLOAT: i32 = 1;

/// `TensorProto`: a constant tensor (an initializer).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `dims = 1`: the shape (unpacked, as in `onnx.proto`).
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// `data_type = 2`: a `TensorProto.DataType` value ([`DATA_TYPE_FLOAT`]).
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    /// `float_data = 4` (packed): the elements of a float tensor, row-major.
    #[prost(float, repeated, packed = "true", tag = "4")]
    pub float_data: Vec<f32>,
    /// `name = 8`: the tensor's name, by which nodes read it.
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
}

/// `ValueInfoProto`: the name and type of a graph input or output.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// `name = 1`: the value's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `type = 2`: its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`: the type of a value (here always a tensor).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// `oneof value`: only `tensor_type = 1` is declared.
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
}

/// The nested messages of [`TypeProto`].
pub mod type_proto {
    /// `TypeProto.Tensor`: element type and shape of a tensor value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        /// `elem_type = 1`: a `TensorProto.DataType` value.
        #[prost(int32, optional, tag = "1")]
        pub elem_type: Option<i32>,
        /// `shape = 2`: the shape, with fixed or symbolic dimensions.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }

    /// `TypeProto.value` (the declared member of the oneof).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `tensor_type = 1`.
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }
}

/// `TensorShapeProto`: a list of dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// `dim = 1`.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// The nested messages of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// `TensorShapeProto.Dimension`: a fixed size or a symbolic name.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        /// `oneof value { dim_value = 1; dim_param = 2; }`.
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    /// The oneof of [`Dimension`].
    pub mod dimension {
        /// `Dimension.value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// `dim_value = 1`: a fixed size.
            #[prost(int64, tag = "1")]
            DimValue(i64),
            /// `dim_param = 2`: a symbolic dimension, e.g. `batch`.
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}
