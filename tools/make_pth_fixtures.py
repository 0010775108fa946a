#!/usr/bin/env python3
"""PyTorch `.pth` fixtures: the safetensors fixtures of tests/fixtures/{tiny,tiny-g4}, saved with
`torch.save` the ways training code saves them.

For each net, next to its safetensors files (tests/fixtures/<net>/):
  train_time.pth            timm's `model.state_dict()` as is (OrderedDict with `_metadata`,
                            `num_batches_tracked` int64 tensors) after loading train_time.safetensors
  train_time_official.pth   {"state_dict": {"module." + key: tensor}} of train_time_official
                            .safetensors, as a DDP training script checkpoints (plus an epoch number)
  deploy.pth                the deployed timm state_dict after `model.to(memory_format=
                            torch.channels_last)`: 4-D weights with non-contiguous strides
  deploy_official_f16.pth   {"model": deploy_official.safetensors in float16}
  deploy_official_bf16.pth  deploy_official.safetensors in bfloat16, a plain dict
and tiny/invalid/{nan,f64,missing,extra}.{pth,safetensors}: defective twins (see invalid_twins).

After loading, each must equal its safetensors source bit for bit (the 16-bit ones: equal to the
source rounded to f16 / bf16). The tests read only tests/fixtures/.

Requires: pip install torch timm safetensors
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def build(groups):
    """The fixture architecture (as tests/fixtures/<net>/manifest.json describes it)."""
    from timm.models.byobnet import ByobNet, ByoBlockCfg, ByoModelCfg

    gs = (lambda chs, idx: chs // groups if (idx + 1) % 2 == 0 else 0)
    cfg = ByoModelCfg(
        blocks=(
            ByoBlockCfg(type="rep", d=2, c=16, s=2, gs=0),
            ByoBlockCfg(type="rep", d=3, c=32, s=2, gs=gs),
            ByoBlockCfg(type="rep", d=4, c=48, s=2, gs=gs),
            ByoBlockCfg(type="rep", d=1, c=80, s=2, gs=0),
        ),
        stem_type="rep", stem_chs=12, num_features=0)
    return ByobNet(cfg, num_classes=10)


def load_model(groups, path, deploy):
    model = build(groups)
    if deploy:
        from timm.utils.model import reparameterize_model
        model = reparameterize_model(model)
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (
        missing, unexpected)
    return model.eval()


def invalid_twins(d):
    """tests/fixtures/tiny/invalid/: defective deployed checkpoints (f16, to stay small), each as
    `.pth` and as `.safetensors` from the same tensors, so the tests can check that both formats
    refuse them with the same error."""
    out = os.path.join(d, "invalid")
    os.makedirs(out, exist_ok=True)
    base = {k: v.half() for k, v in load_file(os.path.join(d, "deploy.safetensors")).items()}
    stem = "stem.reparam_conv.weight"
    nan = dict(base)
    nan[stem] = nan[stem].clone()
    nan[stem].view(-1)[5] = float("nan")
    f64 = dict(base)
    f64["head.fc.bias"] = f64["head.fc.bias"].double()
    missing = {k: v for k, v in base.items() if k != "head.fc.bias"}
    extra = dict(base, **{"head.fc.scale": torch.ones(10, dtype=torch.float16)})
    for name, state in [("nan", nan), ("f64", f64), ("missing", missing), ("extra", extra)]:
        torch.save(state, os.path.join(out, name + ".pth"))
        save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(out, name + ".safetensors"))


def main():
    for net, groups in [("tiny", 2), ("tiny-g4", 4)]:
        d = os.path.join(FIXTURES, net)
        train = load_model(groups, os.path.join(d, "train_time.safetensors"), deploy=False)
        torch.save(train.state_dict(), os.path.join(d, "train_time.pth"))

        official = load_file(os.path.join(d, "train_time_official.safetensors"))
        wrapped = {"epoch": 120, "state_dict": {"module." + k: v for k, v in official.items()}}
        torch.save(wrapped, os.path.join(d, "train_time_official.pth"))

        deploy = load_model(groups, os.path.join(d, "deploy.safetensors"), deploy=True)
        deploy = deploy.to(memory_format=torch.channels_last)
        state = deploy.state_dict()
        assert any(v.dim() == 4 and not v.is_contiguous() for v in state.values())
        torch.save(state, os.path.join(d, "deploy.pth"))

        dep_official = load_file(os.path.join(d, "deploy_official.safetensors"))
        torch.save({"model": {k: v.half() for k, v in dep_official.items()}},
                   os.path.join(d, "deploy_official_f16.pth"))
        torch.save({k: v.bfloat16() for k, v in dep_official.items()},
                   os.path.join(d, "deploy_official_bf16.pth"))
    invalid_twins(os.path.join(FIXTURES, "tiny"))
    print("torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
