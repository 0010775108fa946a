//! A small, strict unpickler for the subset of Python's pickle that `torch.save` writes.
//!
//! It builds plain values — no Python code runs, no arbitrary global is called. The only
//! callables understood are the ones a `state_dict` needs: `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` (and `_rebuild_tensor`), `torch._utils._rebuild_parameter`;
//! storages come through `BINPERSID` as `('storage', torch.<Dtype>Storage, key, location,
//! numel)`. Any other opcode or global is an error naming it and the byte offset, so an
//! unexpected file is refused rather than misread.
//!
//! Opcodes: protocols 2–4 as CPython emits them for dicts, lists, tuples, strings, ints, floats,
//! booleans and `None` (`PROTO FRAME GLOBAL STACK_GLOBAL REDUCE BUILD BINPERSID MARK STOP
//! EMPTY_{TUPLE,LIST,DICT} TUPLE{,1,2,3} APPEND(S) SETITEM(S) BIN{INT,INT1,INT2,FLOAT,UNICODE}
//! SHORT_BINUNICODE LONG1 NEWTRUE NEWFALSE NONE {,LONG_}BIN{PUT,GET} MEMOIZE`).

use std::cell::RefCell;
use std::rc::Rc;

/// A storage reference: which archive record holds the bytes, and their element type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    /// The storage class name, e.g. `FloatStorage`.
    pub class: String,
    /// The record key under `<archive>/data/`.
    pub key: String,
    /// Elements in the storage.
    pub numel: usize,
}

/// A tensor: a strided view into a storage (all counts in elements).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A shared, mutable container (pickle's memo refers to the object, not a copy).
type Shared<T> = Rc<RefCell<T>>;

/// An unpickled value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    /// `True` / `False` (only skipped: `requires_grad` flags).
    Bool,
    Int(i64),
    /// A float (only skipped: no state-dict field is one).
    Float,
    Str(String),
    Tuple(Rc<Vec<Value>>),
    List(Shared<Vec<Value>>),
    Dict(Shared<Vec<(Value, Value)>>),
    /// `module.name`, not called yet.
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    fn dict() -> Self {
        Value::Dict(Rc::new(RefCell::new(Vec::new())))
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

/// What went wrong, with the byte offset in the pickle.
pub(crate) type PickleError = String;

/// Unpickles `bytes` to one value.
pub(crate) fn unpickle(bytes: &[u8]) -> Result<Value, PickleError> {
    Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    }
    .run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Vec<Option<Value>>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("pickle truncated at byte {}", self.pos));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(format!("unterminated line at byte {}", self.pos));
        };
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|_| format!("non-UTF-8 name at byte {}", self.pos))?
            .to_string();
        self.pos += len + 1;
        Ok(text)
    }

    fn string(&mut self, len: usize) -> Result<Value, PickleError> {
        let at = self.pos;
        let raw = self.take(len)?;
        let text =
            std::str::from_utf8(raw).map_err(|_| format!("non-UTF-8 string at byte {at}"))?;
        Ok(Value::Str(text.to_string()))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(format!("no MARK before byte {}", self.pos));
        };
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&Value, PickleError> {
        self.stack
            .last()
            .ok_or_else(|| format!("empty stack at byte {}", self.pos))
    }

    fn put(&mut self, index: usize) -> Result<(), PickleError> {
        let value = self.top()?.clone();
        if index > self.memo.len() + 1_000_000 {
            return Err(format!("memo index {index} out of range"));
        }
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(value);
        Ok(())
    }

    fn get(&mut self, index: usize) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(index)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("memo entry {index} is unset (byte {})", self.pos))?;
        self.stack.push(value);
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return Err(format!("pickle protocol {proto} is not supported"));
                    }
                }
                0x95 => {
                    self.le::<8>()?; // FRAME: a length hint only.
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'}' => self.stack.push(Value::dict()),
                b'N' => self.stack.push(Value::None),
                0x88 | 0x89 => self.stack.push(Value::Bool),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(format!("LONG1 of {n} bytes at byte {at} exceeds 64 bits"));
                    }
                    let raw = self.take(n)?;
                    let mut buf = if raw.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(raw);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    self.le::<8>()?;
                    self.stack.push(Value::Float);
                }
                b'X' => {
                    let len = u32::from_le_bytes(self.le()?) as usize;
                    let v = self.string(len)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let len = self.u8()? as usize;
                    let v = self.string(len)?;
                    self.stack.push(v);
                }
                b'q' => {
                    let i = self.u8()? as usize;
                    self.put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?) as usize;
                    self.put(i)?;
                }
                0x94 => {
                    let i = self.memo.len();
                    self.put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as usize;
                    self.get(i)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?) as usize;
                    self.get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(format!("STACK_GLOBAL of non-strings at byte {at}"));
                    };
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item], at)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items, at)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value], at)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items, at)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(Value::Storage(storage(&pid, at)?));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(reduce(&callable, &args, at)?);
                }
                b'b' => {
                    // BUILD: `_metadata` on an OrderedDict (ignored: it only records module
                    // versions); on anything else the state would change the object: refused.
                    let _state = self.pop()?;
                    let target = self.top()?;
                    if !matches!(target, Value::Dict(_)) {
                        return Err(format!("BUILD on a {} at byte {at}", target.kind()));
                    }
                }
                other => {
                    return Err(format!(
                        "pickle opcode 0x{other:02x} at byte {at} is not supported"
                    ));
                }
            }
        }
    }

    fn append(&mut self, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        match self.top()? {
            Value::List(list) => {
                list.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(format!("APPEND to a {} at byte {at}", other.kind())),
        }
    }

    fn set_items(&mut self, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(format!("odd SETITEMS at byte {at}"));
        }
        let Value::Dict(dict) = self.top()? else {
            return Err(format!("SETITEM on a non-dict at byte {at}"));
        };
        let mut dict = dict.borrow_mut();
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            dict.push((k, v));
        }
        Ok(())
    }
}

fn tuple(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Tuple(items) => Some(items),
        _ => None,
    }
}

fn count(value: &Value) -> Option<usize> {
    match value {
        Value::Int(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn counts(value: &Value) -> Option<Vec<usize>> {
    tuple(value)?.iter().map(count).collect()
}

/// `('storage', torch.FloatStorage, '0', 'cpu', numel)`.
fn storage(pid: &Value, at: usize) -> Result<StorageRef, PickleError> {
    let bad = || format!("unsupported persistent id at byte {at}: {pid:?}");
    let items = tuple(pid).ok_or_else(bad)?;
    match items {
        [
            Value::Str(tag),
            Value::Global(class),
            Value::Str(key),
            Value::Str(_location),
            n,
        ] if tag == "storage" => {
            let class = class.strip_prefix("torch.").ok_or_else(bad)?.to_string();
            Ok(StorageRef {
                class,
                key: key.clone(),
                numel: count(n).ok_or_else(bad)?,
            })
        }
        _ => Err(bad()),
    }
}

/// Calls one of the few known callables.
fn reduce(callable: &Value, args: &Value, at: usize) -> Result<Value, PickleError> {
    let Value::Global(name) = callable else {
        return Err(format!("REDUCE of a {} at byte {at}", callable.kind()));
    };
    let args = tuple(args).ok_or_else(|| format!("REDUCE arguments are not a tuple ({at})"))?;
    let bad = || format!("unexpected arguments to {name} at byte {at}");
    match name.as_str() {
        "collections.OrderedDict" if args.is_empty() => Ok(Value::dict()),
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let [Value::Storage(storage), offset, size, stride, ..] = args else {
                return Err(bad());
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: count(offset).ok_or_else(bad)?,
                size: counts(size).ok_or_else(bad)?,
                stride: counts(stride).ok_or_else(bad)?,
            }))
        }
        "torch._utils._rebuild_parameter" => match args.first() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor.clone()),
            _ => Err(bad()),
        },
        other => Err(format!(
            "pickle calls `{other}` (byte {at}); only torch tensors and dicts are read"
        )),
    }
}

/// The `(key, tensor)` pairs of a state dict inside `root`: the root dict itself, or the dict
/// under `state_dict` or `model` (how training scripts nest it). Every value must be a tensor.
pub(crate) fn state_dict(root: &Value) -> Result<Vec<(String, TensorRef)>, PickleError> {
    let Value::Dict(top) = root else {
        return Err(format!(
            "the file holds a {}, not a dict of tensors",
            root.kind()
        ));
    };
    let nested = top.borrow().iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(d)) if k == "state_dict" || k == "model" => Some(d.clone()),
        _ => None,
    });
    let dict = nested.unwrap_or_else(|| top.clone());
    let dict = dict.borrow();
    dict.iter()
        .map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Ok((k.clone(), t.clone())),
            (Value::Str(k), other) => Err(format!(
                "`{k}` holds a {} value, not a tensor",
                other.kind()
            )),
            (other, _) => Err(format!(
                "a state-dict key is a {}, not a string",
                other.kind()
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ordered_dict_of_ints_and_strings() {
        // pickle.dumps(OrderedDict([("a", 1), ("b", "xy")]), protocol=2)
        let bytes = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03X\x02\x00\x00\x00xyq\x04u.";
        let Value::Dict(d) = unpickle(bytes).unwrap() else {
            panic!("not a dict");
        };
        let d = d.borrow();
        assert_eq!(d.len(), 2);
        assert!(matches!(&d[0], (Value::Str(k), Value::Int(1)) if k == "a"));
        assert!(matches!(&d[1], (Value::Str(k), Value::Str(v)) if k == "b" && v == "xy"));
    }

    #[test]
    fn refuses_unknown_globals_opcodes_and_truncation() {
        let os_system = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let e = unpickle(os_system).unwrap_err();
        assert!(e.contains("`os.system`"), "{e}");
        let e = unpickle(b"\x80\x02I1\n.").unwrap_err();
        assert!(e.contains("opcode 0x49"), "{e}");
        let e = unpickle(b"\x80\x02X\x09\x00\x00\x00abc").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(unpickle(b"\x80\x02.").unwrap_err().contains("underflow"));
    }

    #[test]
    fn state_dict_must_hold_only_tensors() {
        let e = state_dict(&unpickle(b"\x80\x02}X\x01\x00\x00\x00aK\x01s.").unwrap()).unwrap_err();
        assert!(e.contains("`a` holds a int value"), "{e}");
    }
}
