"""Architectures: parameter counts against the papers, shapes, determinism, ONNX export."""

import copy

import numpy as np
import pytest
import torch

from narrow_seg_ros.models import build_model, list_models
from narrow_seg_ros.models.stats import model_stats

NDNETS = ["ndnet29", "ndnet45", "ndnet61", "ndnet29_e2", "ndnet45_e2", "ndnet61_e2"]
# every registered network with its default options, and NDNet45 with the FCN8 decoder
VARIANTS = [(name, {}) for name in NDNETS + ["vnet"]] + [("ndnet45", {"head": "fcn8"})]
VARIANT_IDS = [name + ("-" + "-".join(map(str, options.values())) if options else "") for name, options in VARIANTS]


def randomize_skip_scores(model):
    """FCN8's skip classifiers start at zero; give them weights so that tests see the skips."""
    for skip in (getattr(model, "skip16", None), getattr(model, "skip8", None)):
        if skip is not None:
            torch.nn.init.normal_(skip[-1].weight, std=0.1)
            torch.nn.init.normal_(skip[-1].bias, std=0.1)
    return model


# (paper Table II backbone, authors'-code FCN32 total), 19 classes, no aux head.
PAPER_PARAMS = {"ndnet29": (515e3, 521e3), "ndnet45": (386e3, 400e3), "ndnet61": (292e3, 307e3)}


def test_registry_names():
    assert set(list_models()) == set(NDNETS) | {"vnet"}
    with pytest.raises(ValueError, match="unknown model"):
        build_model("ndnet99")


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_ndnet_parameter_counts_match_paper(name):
    backbone, total = PAPER_PARAMS[name]
    stats = model_stats(name, (1024, 2048))
    assert abs(stats["params_backbone"] / backbone - 1) < 0.06, stats
    assert abs(stats["params_total"] / total - 1) < 0.06, stats


def test_ndnet45_gmacs_match_authors_code():
    # NOTES.md: NDNet45 FCN32 measured at 1.98 GMAC for 1024×2048; 29 → 2.72, 61 → 1.60.
    for name, gmac in (("ndnet29", 2.72), ("ndnet45", 1.98), ("ndnet61", 1.60)):
        assert model_stats(name)["gmacs"] == pytest.approx(gmac, rel=0.02)


def test_e2_variants_are_narrower():
    for depth in (29, 45, 61):
        e4, e2 = (model_stats(f"ndnet{depth}{s}")["params_total"] for s in ("", "_e2"))
        assert e2 < 0.6 * e4
    model = build_model("ndnet29_e2")
    assert model.out_channels == 192  # Table II: max width 192


def test_vnet_parameter_count_near_paper():
    stats = model_stats("vnet")
    assert abs(stats["params_total"] / 0.16e6 - 1) < 0.15, stats
    assert stats["output_stride"] == 8


def test_vnet_alpha_beta_options():
    small, big = build_model("vnet", alpha=1, beta=1), build_model("vnet", alpha=2, beta=4)
    assert len(small.stage3.blocks) == 1 and len(big.stage2.blocks) == 2 and len(big.stage3.blocks) == 4


def test_aux_head_is_optional_and_training_only():
    plain, aux = build_model("ndnet45"), build_model("ndnet45", aux_head=True)
    extra = sum(p.numel() for p in aux.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra > 0
    x = torch.randn(2, 3, 64, 128)
    out, aux_out = aux.train()(x, return_aux=True)
    assert out.shape == aux_out.shape == (2, 19, 64, 128)
    low, aux_low = aux(x, return_aux=True, full_resolution=False)
    assert low.shape[-2:] == (2, 4) and aux_low.shape[-2:] == (4, 8)  # strides 32 and 16
    with pytest.raises(ValueError, match="auxiliary"):
        plain(x, return_aux=True)


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("size", [(64, 128), (96, 160)])
def test_output_shape_and_determinism(name, options, size):
    torch.manual_seed(0)
    model = randomize_skip_scores(build_model(name, num_classes=7, **options)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        a, b = model(x), model(x)
        low = model(x, full_resolution=False)
    assert a.shape == (2, 7, *size)
    assert torch.equal(a, b)
    assert low.shape[-2:] == (size[0] // model.output_stride, size[1] // model.output_stride)


def test_fcn8_decoder():
    """head="fcn8": stride-8 logits = up(up(score32) + score16) + score8; the skip classifiers start
    at zero (the decoder then equals FCN32's head through the two intermediate upsamples), count
    as heads, not backbone, and are optional when a run starts from FCN32 weights."""
    torch.manual_seed(0)
    fcn32, fcn8 = build_model("ndnet45"), build_model("ndnet45", head="fcn8")
    assert (fcn32.output_stride, fcn8.output_stride) == (32, 8)
    assert set(fcn8.head_modules()) == {"head", "skip16", "skip8"} and {"skip16", "skip8"} <= fcn8.optional_heads()
    backbone = {id(p) for p in fcn8.backbone_parameters()}
    assert len(backbone) == len(list(fcn32.backbone_parameters()))
    assert not backbone & {id(p) for p in fcn8.skip8.parameters()}
    fcn8.load_state_dict(fcn32.state_dict(), strict=False)
    fcn32.eval(), fcn8.eval()
    x = torch.randn(2, 3, 128, 256)
    with torch.no_grad():
        high, mid, low = fcn8.encode(x)[0]
        assert torch.equal(high, fcn32.encode(x)[0])
        fresh = fcn8(x, full_resolution=False)
        assert fresh.shape[-2:] == (16, 32)
        expected = fcn8.upsample(fcn8.upsample(fcn32.head(high), mid.shape[-2:]), low.shape[-2:])
        torch.testing.assert_close(fresh, expected, rtol=0, atol=1e-6)
        randomize_skip_scores(fcn8)
        skips = fcn8.upsample(fcn8.upsample(fcn32.head(high), mid.shape[-2:]) + fcn8.skip16(mid), low.shape[-2:])
        torch.testing.assert_close(fcn8(x, full_resolution=False), skips + fcn8.skip8(low), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="head must be one of"):
        build_model("ndnet45", head="fcn16")


def _grads(model, x, weight):
    x = x.clone().requires_grad_(True)
    (model(x) * weight).sum().backward()
    return x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("options", [{}, {"alpha": 2, "beta": 3}])
def test_reversible_gradients_equal_plain_autograd(options):
    torch.manual_seed(0)
    rev = build_model("vnet", num_classes=5, **options).double().train()
    plain = copy.deepcopy(rev)
    plain.reversible = False
    assert rev.reversible
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    weight = torch.randn(2, 5, 64, 96, dtype=torch.float64)
    dx_rev, grads_rev = _grads(rev, x, weight)
    dx_plain, grads_plain = _grads(plain, x, weight)

    assert ((dx_rev - dx_plain).norm() / dx_plain.norm()).item() < 1e-6
    scale = max(g.abs().max().item() for g in grads_plain.values())
    for name, g_plain in grads_plain.items():
        g_rev = grads_rev[name]
        # Some true gradients are exactly zero (a BN bias feeding a train-mode BN): compare those
        # against the overall gradient scale instead of their own rounding noise.
        denom = max(g_plain.norm().item(), 1e-9 * scale)
        assert (g_rev - g_plain).norm().item() / denom < 1e-6, name
    # The recomputation in backward must not update BatchNorm statistics a second time.
    for (name, a), (_, b) in zip(rev.named_buffers(), plain.named_buffers()):
        assert torch.equal(a, b), name


def test_reversible_path_keeps_less_for_backward():
    """Only the V stacks' outputs are saved: count the bytes autograd keeps."""
    model = build_model("vnet").train()
    x = torch.randn(1, 3, 128, 256)

    def saved_bytes(reversible):
        model.reversible = reversible
        storages = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x, full_resolution=False)
        return sum(storages.values())

    assert saved_bytes(True) < 0.5 * saved_bytes(False)


def test_reversible_inverse_reconstructs_input():
    torch.manual_seed(0)
    block = build_model("vnet").stage3.blocks[0].double().eval()
    x = torch.randn(1, 112, 16, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(block.inverse(block(x)), x, atol=1e-10)


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_onnx_export_matches_torch(name, options, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = randomize_skip_scores(build_model(name, **options)).eval()
    x = torch.randn(1, 3, 64, 128)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), opset_version=17, input_names=["image"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = model(x).numpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_channel_padding_keeps_the_logits(name, options):
    """with_channel_multiple(16) widens NDNet's 8-channel stem with zero channels (onnxruntime's
    NCHWc blocks on AVX-512), which leaves NDNet45 with no unaligned layer; the logits stay equal.
    VNet has nothing to pad."""
    torch.manual_seed(0)
    model = randomize_skip_scores(build_model(name, **options)).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # non-trivial BN
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    padded = model.with_channel_multiple(16)
    assert model.with_channel_multiple(8) is model and model.with_channel_multiple(1) is model
    if name == "vnet":
        assert padded is model
        return
    assert padded.stem[0][0].out_channels == 16
    if name == "ndnet45":  # every layer but the 19-class classifiers
        widths = [m.out_channels for m in padded.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(w % 16 == 0 for w in widths if w != model.num_classes)
    assert model.stem[0][0].out_channels == 8  # the original is untouched
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        torch.testing.assert_close(padded(x, full_resolution=False), model(x, full_resolution=False), rtol=0, atol=1e-5)
