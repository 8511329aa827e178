"""ConvVAE in both latent layouts: shapes, rebuild from init_args, capacity, determinism."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from smalltrain.tasks.audio.model.flat import ConvDecoder, ConvEncoder
from smalltrain.tasks.audio.model.heads import LOGVAR_MIN
from smalltrain.tasks.audio.model.losses import vae_loss
from smalltrain.tasks.audio.model.model import ConvVAE, TemporalDecoder, TemporalEncoder

TINY: dict[str, Any] = {"capacity": 0.125}
# the flat layout (old models) and the temporal one the presets use (8 steps x 8 floats)
LAYOUTS: dict[str, dict[str, Any]] = {"flat": {}, "temporal": {"latent_frames": 8}}
each_layout = pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))


@pytest.mark.parametrize("n_frames", [94, 10, 1])
@each_layout
def test_output_shape_equals_input_shape(n_frames: int, layout: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = ConvVAE(n_frames=94, **TINY, **layout)
    x = torch.rand(2, 1, 128, n_frames)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape
    assert mu.shape == logvar.shape == (2, 64)
    assert model.decode(mu).shape == (2, 1, 128, 94)


@pytest.mark.parametrize("n_frames", [94, 10, 1])
@each_layout
def test_model_built_for_any_frame_count(n_frames: int, layout: dict[str, Any]) -> None:
    model = ConvVAE(n_mels=40, n_frames=n_frames, latent_dim=8, width=8, n_layers=3, **layout)
    x = torch.rand(3, 1, 40, n_frames)
    assert model(x)[0].shape == x.shape


def test_encoder_and_decoder_are_the_public_halves() -> None:
    model = ConvVAE(**TINY)
    assert isinstance(model.encoder, ConvEncoder)
    assert isinstance(model.decoder, ConvDecoder)
    with pytest.raises(ValueError, match="expected mels of shape"):
        model.encode(torch.rand(1, 1, 64, 94))
    with pytest.raises(ValueError, match="frames"):
        model.encode(torch.rand(1, 1, 128, 200))


@each_layout
def test_init_args_round_trip_rebuilds_identical_model(layout: dict[str, Any]) -> None:
    torch.manual_seed(1)
    model = ConvVAE(latent_dim=16, width=8, n_layers=3, capacity=0.5, **layout)
    args = json.loads(json.dumps(model.init_args))  # plain JSON types only
    clone = ConvVAE.from_init_args(args)
    ref, new = model.state_dict(), clone.state_dict()
    assert list(ref) == list(new)
    assert all(ref[k].shape == new[k].shape for k in ref)
    clone.load_state_dict(ref)
    model.eval()
    clone.eval()
    x = torch.rand(2, 1, 128, 94)
    torch.testing.assert_close(clone(x)[0], model(x)[0], rtol=0, atol=0)


def test_capacity_knob_makes_a_tiny_model() -> None:
    tiny, full = ConvVAE(capacity=0.125), ConvVAE()
    assert tiny.num_parameters() < 50_000
    assert full.num_parameters() > 10 * tiny.num_parameters()
    assert tiny.init_args["capacity"] == 0.125


@each_layout
def test_gradients_flow_to_every_parameter(layout: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = ConvVAE(**TINY, **layout)
    x = torch.rand(2, 1, 128, 94)
    x_hat, mu, logvar = model(x)
    vae_loss(x_hat, x, mu, logvar, beta=1e-3, sc_weight=1.0)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@each_layout
def test_forward_is_deterministic_under_manual_seed(layout: dict[str, Any]) -> None:
    x = torch.rand(2, 1, 128, 94)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = ConvVAE(**TINY, **layout)
        outs.append(model(x)[0])  # training mode: samples z from the global RNG
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    gen = [torch.Generator().manual_seed(5) for _ in range(2)]
    model.train()
    a, b = model(x, generator=gen[0])[0], model(x, generator=gen[1])[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@each_layout
def test_eval_mode_decodes_the_mean_and_uses_no_randomness(layout: dict[str, Any]) -> None:
    model = ConvVAE(**TINY, **layout).eval()
    x = torch.rand(1, 1, 128, 94)
    state = torch.get_rng_state()
    x_hat, mu, _ = model(x)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(x_hat, model.decode(mu))


@each_layout
def test_batch_of_one_matches_batch_of_many(layout: dict[str, Any]) -> None:
    model = ConvVAE(**TINY, **layout).eval()
    x = torch.rand(3, 1, 128, 94)
    torch.testing.assert_close(model(x[:1])[0], model(x)[0][:1], rtol=1e-5, atol=1e-6)


@each_layout
def test_sigmoid_output_is_bounded_by_output_max(layout: dict[str, Any]) -> None:
    model = ConvVAE(
        **TINY, **layout
    )  # default output_max 2.0: normalized mels of loud audio exceed 1
    x_hat = model.decode(torch.randn(4, 64) * 100)
    assert x_hat.min() >= 0
    assert x_hat.max() <= 2.0
    small = ConvVAE(output_max=1.0, **TINY, **layout)
    assert small.decode(torch.randn(4, 64) * 100).max() <= 1.0
    for output in ("softplus", "linear"):
        assert ConvVAE(output=output, **TINY, **layout).decode(torch.randn(2, 64)).shape == (
            2,
            1,
            128,
            94,
        )


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="latent_dim"):
        ConvVAE(latent_dim=0)
    with pytest.raises(ValueError, match="capacity"):
        ConvVAE(capacity=0)
    with pytest.raises(ValueError, match="output"):
        ConvVAE(output="tanh")
    with pytest.raises(ValueError, match="latent_frames=12: must be None or a whole divisor of"):
        ConvVAE(latent_dim=64, latent_frames=12)
    with pytest.raises(ValueError, match="latent_frames"):
        ConvVAE(latent_dim=64, latent_frames=0)


def test_temporal_layout_has_its_own_halves_and_records_its_frames() -> None:
    model = ConvVAE(latent_dim=60, latent_frames=12, **TINY)
    assert isinstance(model.encoder, TemporalEncoder)
    assert isinstance(model.decoder, TemporalDecoder)
    assert (model.layout, model.latent_frames) == ("temporal", 12)
    assert model.init_args["latent_frames"] == 12
    assert "latent_frames" not in ConvVAE(**TINY).init_args  # old flat models load unchanged
    assert ConvVAE.from_init_args({**ConvVAE(**TINY).init_args}).layout == "flat"
    with pytest.raises(ValueError, match="expected mels of shape"):
        model.encode(torch.rand(1, 1, 64, 94))
    with pytest.raises(ValueError, match="built for at most 96"):
        model.encode(torch.rand(1, 1, 128, 97))


def test_temporal_code_moves_with_the_sound() -> None:
    """Shifting a sound by one latent step (8 frames) shifts its code by one step."""
    torch.manual_seed(0)
    model = ConvVAE(n_mels=16, n_frames=64, latent_dim=16, latent_frames=8, width=8).eval()
    x = torch.zeros(1, 1, 16, 64)
    x[..., 16:24] = torch.rand(1, 1, 16, 8) + 0.5  # a burst in silence
    shifted = torch.roll(x, 8, dims=-1)
    code = model.encode(x)[0].reshape(2, 8)  # [floats per step, steps]
    code_shifted = model.encode(shifted)[0].reshape(2, 8)
    torch.testing.assert_close(code_shifted[:, 3:6], code[:, 2:5], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(code_shifted[:, 3], code[:, 3])


def test_init_output_level_starts_the_decoder_at_the_mean() -> None:
    torch.manual_seed(0)
    model = ConvVAE(n_mels=16, n_frames=32, latent_dim=8, latent_frames=4, **TINY).eval()
    mean = torch.linspace(0.1, 1.4, 16)  # loud bands above 1 (0 dB) included
    model.init_output_level(mean)
    out = model.decode(torch.zeros(2, 8))[0, 0].mean(dim=1)  # the per-band level
    torch.testing.assert_close(out, mean, rtol=0, atol=0.05)
    flat = ConvVAE(**TINY)
    before = {k: v.clone() for k, v in flat.state_dict().items()}
    flat.init_output_level(torch.full((128,), 0.7))  # the flat layout keeps its fixed start
    assert all(torch.equal(before[k], v) for k, v in flat.state_dict().items())


def _fixed_mels(n: int, n_mels: int, n_frames: int) -> torch.Tensor:
    """Random but fixed, mel-like: a smooth spectral envelope times a smooth time envelope."""
    g = torch.Generator().manual_seed(0)

    def smooth(length: int, knots: int) -> torch.Tensor:
        r = torch.rand(n, 1, knots, generator=g)
        return F.interpolate(r, size=length, mode="linear", align_corners=True)

    spec = smooth(n_mels, 8).view(n, 1, n_mels, 1)
    env = smooth(n_frames, 6).view(n, 1, 1, n_frames)
    return 0.2 + 0.8 * spec * env


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Small ops on a busy machine run far faster on one thread than on contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
@each_layout
def test_tiny_model_overfits_four_mels(layout: dict[str, Any]) -> None:
    torch.manual_seed(0)
    size = TINY if not layout else {"width": 16}  # a temporal layer is one width wide
    model = ConvVAE(n_mels=64, n_frames=32, **size, **layout)
    x = _fixed_mels(4, 64, 32)
    model.init_output_level(x.mean(dim=(0, 1, 3)))  # as training does (flat: no-op)
    # weights shared across time memorise more slowly than one Linear over the whole chunk
    steps = 300 if layout else 100
    # and at 3e-3 the temporal layout (with its global code and gain) overshoots and spikes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3 if layout else 3e-3)
    losses = []
    for _ in range(steps):
        x_hat, mu, logvar = model(x)
        loss = vae_loss(x_hat, x, mu, logvar, beta=1e-4, sc_weight=1.0)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_gain_model_shifts_exactly_with_the_level() -> None:
    """The same sound 0.2 louder (16 dB at floor -80) has the same shape code, a gain 0.2
    higher, and decodes to exactly the same mel 0.2 higher: what PCA does in dB for free."""
    torch.manual_seed(0)
    model = ConvVAE(n_mels=16, n_frames=32, latent_dim=12, latent_frames=4, width=8,
                    global_dim=3, gain=True).eval()  # fmt: skip
    assert model.code is not None
    assert (model.code.channels, model.code.global_dim, model.code.gain) == (2, 3, True)
    x = 0.3 + 0.5 * torch.rand(2, 1, 16, 32)  # no bin at the floor
    mu, logvar = model.encode(x)
    mu_loud, _ = model.encode(x + 0.2)
    torch.testing.assert_close(mu_loud[:, :-1], mu[:, :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(mu_loud[:, -1], mu[:, -1] + 0.2, atol=1e-6, rtol=0)
    torch.testing.assert_close(mu[:, -1], x.amax(dim=(1, 2, 3)))  # the gain is the peak
    torch.testing.assert_close(model.decode(mu_loud), model.decode(mu) + 0.2, atol=1e-5, rtol=0)
    assert (logvar[:, -1] == LOGVAR_MIN).all()  # deterministic: no sampling noise to speak of
    mask = model.kl_mask
    assert mask is not None
    assert mask.tolist() == [1.0] * 11 + [0.0]
    assert ConvVAE(latent_dim=60, latent_frames=12, **TINY).kl_mask is None


def test_global_code_and_gain_round_trip_and_old_models_stay_as_they_were() -> None:
    model = ConvVAE(latent_dim=60, latent_frames=12, global_dim=11, gain=True, **TINY)
    args = json.loads(json.dumps(model.init_args))
    assert (args["global_dim"], args["gain"]) == (11, True)
    clone = ConvVAE.from_init_args(args)
    assert list(clone.state_dict()) == list(model.state_dict())
    plain = ConvVAE(latent_dim=60, latent_frames=12, **TINY).init_args
    assert "global_dim" not in plain  # a model saved before these parts existed rebuilds as it was
    assert "gain" not in plain
    with pytest.raises(ValueError, match="less global_dim and gain"):
        ConvVAE(latent_dim=60, latent_frames=12, global_dim=10, gain=True)  # 49 per 12 steps
    with pytest.raises(ValueError, match="temporal layout"):
        ConvVAE(latent_dim=64, gain=True)


def test_gain_tilt_starts_flat_and_is_saved_only_when_on() -> None:
    torch.manual_seed(0)
    plain = ConvVAE(latent_dim=60, latent_frames=12, global_dim=11, gain=True, **TINY).eval()
    torch.manual_seed(0)
    tilted = ConvVAE(latent_dim=60, latent_frames=12, global_dim=11, gain=True, gain_tilt=True,
                     **TINY).eval()  # fmt: skip
    assert "gain_tilt" not in plain.init_args
    assert ConvVAE.from_init_args(tilted.init_args).init_args["gain_tilt"] is True
    assert set(tilted.state_dict()) - set(plain.state_dict()) == {"decoder.tilt"}
    z = torch.randn(2, 60)
    torch.testing.assert_close(tilted.decode(z), plain.decode(z))  # zero tilt at the start
    with torch.no_grad():
        tilted.decoder.tilt.fill_(0.5)  # type: ignore[union-attr, operator]
    moved = tilted.decode(z) - plain.decode(z)  # half a unit of dB per unit of level
    torch.testing.assert_close(moved, 0.5 * z[:, -1].reshape(-1, 1, 1, 1).expand_as(moved))


def test_mean_level_is_relative_to_the_peak_for_a_gain_model() -> None:
    torch.manual_seed(0)
    mels = torch.rand(5, 16, 32)
    plain = ConvVAE(n_mels=16, n_frames=32, latent_dim=8, latent_frames=4, width=8)
    gain = ConvVAE(n_mels=16, n_frames=32, latent_dim=9, latent_frames=4, width=8, gain=True)
    torch.testing.assert_close(plain.mean_level(mels), mels.mean(dim=(0, 2)))
    relative = mels - mels.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(gain.mean_level(mels), relative.mean(dim=(0, 2)))
    gain.init_output_level(gain.mean_level(mels))
    z = torch.zeros(1, 9)
    z[0, -1] = 0.9  # a chunk peaking at 0.9
    out = gain.eval().decode(z)[0, 0].mean(dim=1)
    torch.testing.assert_close(out, relative.mean(dim=(0, 2)) + 0.9, atol=0.05, rtol=0)


def _rank_three_mels(n: int) -> torch.Tensor:
    """``n`` chunks [n, 16, 32], each a mix of three shapes at its own level (0.3-1.1)."""
    g = torch.Generator().manual_seed(0)
    shapes = torch.rand(3, 16 * 32, generator=g)
    mels = (torch.rand(n, 3, generator=g) @ shapes).reshape(n, 16, 32) / 3
    return mels + torch.rand(n, 1, 1, generator=g) * 0.4


def test_linear_path_starts_as_pca_of_the_training_chunks_and_is_saved_only_when_on() -> None:
    torch.manual_seed(0)
    sizes: dict[str, Any] = {"n_mels": 16, "n_frames": 32, "latent_dim": 9, "latent_frames": 4,
                             "width": 8, "gain": True}  # fmt: skip
    mels = _rank_three_mels(10)
    model = ConvVAE(**sizes, linear_path=True).eval()
    # the chunks less their peak span 4 directions about their mean: the fit uses 4 of 8 floats
    assert model.init_linear_path(mels[:7]) == 4
    x = mels[7:].unsqueeze(1)  # chunks the fit never saw, in the same span
    out, mu, _ = model(x)
    # PCA reconstructs them exactly (the soft bound costs < 0.005 at the peak), the convs add 0
    torch.testing.assert_close(out, x, atol=5e-3, rtol=0)
    plain = ConvVAE(**sizes).eval()
    plain.init_output_level(plain.mean_level(mels[:7]))
    assert (plain(x)[0] - x).abs().max() > 0.05  # what a fresh model without the path does
    # whitened: the code of the fitted chunks has unit variance in the 4 floats it uses
    code = model.encode(mels[:7].unsqueeze(1))[0]
    torch.testing.assert_close(code[:, :4].std(dim=0), torch.ones(4), atol=1e-3, rtol=0)
    # saved with the model: a rebuilt model loads the fitted path and decodes the same
    assert "linear_path" not in plain.init_args
    assert model.init_args["linear_path"] is True
    clone = ConvVAE.from_init_args(json.loads(json.dumps(model.init_args))).eval()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.decode(mu), out)
    assert set(model.state_dict()) - set(plain.state_dict()) == {
        f"{half}.linear.{name}" for half in ("encoder", "decoder")
        for name in ("mean", "to_code", "from_code")
    }  # fmt: skip
    assert plain.init_linear_path(mels) == 0  # a no-op without the path
    with pytest.raises(ValueError, match="temporal layout"):
        ConvVAE(latent_dim=9, linear_path=True)


def test_code_mixup_loss_compares_decoded_mixes_of_codes_with_mixes_of_the_chunks() -> None:
    from smalltrain.tasks.audio.training.epoch import mixup_recon

    torch.manual_seed(0)
    mels = _rank_three_mels(8)
    x = mels.unsqueeze(1)
    model = ConvVAE(n_mels=16, n_frames=32, latent_dim=9, latent_frames=4, width=8, gain=True,
                    linear_path=True).eval()  # fmt: skip
    model.init_linear_path(mels)
    args: dict[str, Any] = {"sc_weight": 0.5, "floor_db": -80.0}
    with torch.no_grad():
        mu = model.encode(x)[0]
        # PCA decodes a mix of two chunks' codes to the same mix of the chunks (and the gain
        # float mixes as the peak does): near zero, for any weights
        assert float(mixup_recon(model, x, mu, **args)) < 0.01
        # codes that do not belong to their chunks are far off: the loss pairs them
        assert float(mixup_recon(model, x, mu.roll(3, dims=0), **args)) > 0.05


def test_envelopes_start_at_zero_and_add_a_shape_per_band_and_a_gain_per_frame() -> None:
    sizes: dict[str, Any] = {"n_mels": 16, "n_frames": 32, "latent_dim": 12, "latent_frames": 4,
                             "global_dim": 3, "width": 8, "gain": True}  # fmt: skip
    torch.manual_seed(0)
    plain = ConvVAE(**sizes).eval()
    torch.manual_seed(0)
    split = ConvVAE(**sizes, envelopes=True).eval()
    assert "envelopes" not in plain.init_args
    assert ConvVAE.from_init_args(split.init_args).init_args["envelopes"] is True
    assert {k.split(".")[1] for k in set(split.state_dict()) - set(plain.state_dict())} == {
        "spectral", "gain_curve"}  # fmt: skip
    z = torch.randn(3, 12)
    torch.testing.assert_close(split.decode(z), plain.decode(z))  # the same model at the start
    decoder = split.decoder
    assert isinstance(decoder, TemporalDecoder)
    assert decoder.spectral is not None
    assert decoder.gain_curve is not None
    with torch.no_grad():  # a shape that rises with the band, a gain curve from the features
        decoder.spectral.bias.copy_(torch.linspace(-1.0, 1.0, 16))
        decoder.gain_curve.weight.normal_()

    def before_sigmoid(model: ConvVAE) -> torch.Tensor:  # output = 2 sigmoid(.) - offset + gain
        return torch.logit((model.decode(z).squeeze(1) - z[:, -1:, None] + decoder.offset) / 2)

    pre, moved = before_sigmoid(plain), before_sigmoid(split)
    moved = (moved - pre) - torch.linspace(-1.0, 1.0, 16)[None, :, None]  # less the shape
    # what is left is one curve per chunk and frame, the same in every band
    torch.testing.assert_close(moved, moved[:, :1].expand_as(moved), atol=1e-3, rtol=0)
    assert moved.std() > 0.01


def test_gain_input_lets_the_decoder_shape_its_output_by_the_level() -> None:
    # without it a gain model's output moves by exactly the level, so silence lies at a depth
    # below the peak the code must guess; with it the level is a decoder input as well
    torch.manual_seed(0)
    plain = ConvVAE(latent_dim=60, latent_frames=12, global_dim=11, gain=True, **TINY).eval()
    torch.manual_seed(0)
    fed = ConvVAE(latent_dim=60, latent_frames=12, global_dim=11, gain=True, gain_input=True,
                  **TINY).eval()  # fmt: skip
    assert "gain_input" not in plain.init_args
    assert ConvVAE.from_init_args(fed.init_args).init_args["gain_input"] is True
    fed_in, plain_in = (m.decoder.convs[0] for m in (fed, plain))
    assert isinstance(fed_in, torch.nn.Conv1d)
    assert isinstance(plain_in, torch.nn.Conv1d)
    assert fed_in.in_channels == plain_in.in_channels + 1
    z_soft, z_loud = torch.randn(1, 60).repeat(2, 1).chunk(2)
    z_soft[:, -1], z_loud[:, -1] = 0.5, 1.5
    with torch.no_grad():
        shift = plain.decode(z_loud) - plain.decode(z_soft)
        torch.testing.assert_close(shift, torch.ones_like(shift))  # exactly the level, everywhere
        shift = fed.decode(z_loud) - fed.decode(z_soft)
    assert (shift - 1.0).abs().max() > 1e-3  # the decoder's own output changed with the level
