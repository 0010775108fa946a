//! Batch-norm parameters in inference mode: the model type the oracle, the kernels and the
//! re-parameterization share.

use crate::TensorError;

/// Parameters of a batch-norm layer in inference mode (running statistics, not batch statistics).
///
/// `y[c] = γ[c] · (x[c] − μ[c]) / √(σ²[c] + ε) + β[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Scale γ (`weight` in PyTorch).
    pub gamma: Vec<f32>,
    /// Shift β (`bias` in PyTorch).
    pub beta: Vec<f32>,
    /// Running mean μ.
    pub mean: Vec<f32>,
    /// Running variance σ².
    pub var: Vec<f32>,
    /// ε added to the variance (PyTorch default 1e-5; not stored in checkpoints).
    pub eps: f64,
}

impl BatchNorm {
    /// Number of channels; fails if the four vectors disagree in length.
    pub fn channels(&self) -> Result<usize, TensorError> {
        let c = self.gamma.len();
        for (name, v) in [
            ("beta", &self.beta),
            ("mean", &self.mean),
            ("var", &self.var),
        ] {
            if v.len() != c {
                return Err(TensorError::ShapeMismatch {
                    operand: name,
                    expected: vec![c],
                    actual: vec![v.len()],
                });
            }
        }
        Ok(c)
    }

    /// The equivalent per-channel affine map in f64: `t = γ / √(σ² + ε)`, `b = β − μ·t`, so that
    /// `BN(x) = t·x + b`. This is the scale and shift of the re-parameterization equations.
    pub fn scale_shift(&self) -> Result<(Vec<f64>, Vec<f64>), TensorError> {
        let c = self.channels()?;
        let mut scale = Vec::with_capacity(c);
        let mut shift = Vec::with_capacity(c);
        for i in 0..c {
            let denom = (f64::from(self.var[i]) + self.eps).sqrt();
            if !(denom.is_finite() && denom > 0.0) {
                return Err(TensorError::invalid(
                    "var",
                    format!(
                        "channel {i}: running_var {} + eps {} is not positive",
                        self.var[i], self.eps
                    ),
                ));
            }
            let t = f64::from(self.gamma[i]) / denom;
            scale.push(t);
            shift.push(f64::from(self.beta[i]) - f64::from(self.mean[i]) * t);
        }
        Ok((scale, shift))
    }
}
