//! The timm-produced fixtures: our multi-branch run, fold and plain run against PyTorch.
