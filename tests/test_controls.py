"""The calibration controls of compare_variants: bemseg_reinit (null) and bemseg_frozen_decoder (crippled)."""

from __future__ import annotations

import torch

import bemseg
from bemseg.engine.checkpoint import frozen_fingerprint
from bemseg.engine.optim import param_groups
from bemseg.engine.seeding import seed_everything


def build(name: str, seed: int = 0):
    seed_everything(seed)
    return bemseg.create_model(name, 6)


def test_reinit_is_bemseg_started_from_another_draw():
    reference, control, again = build("bemseg"), build("bemseg_reinit"), build("bemseg_reinit")
    ours, theirs = reference.state_dict(), control.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}  # same architecture
    assert type(control).recipe is type(reference).recipe and control.loss_weights == reference.loss_weights
    assert frozen_fingerprint(control) == frozen_fingerprint(reference)  # the same frozen text encoder
    drawn = [n for n, p in reference.named_parameters() if p.requires_grad and len(p.unique()) > 1]
    assert len(drawn) > 100 and all(not torch.equal(ours[n], theirs[n]) for n in drawn)  # every random draw differs
    assert all(torch.equal(theirs[k], v) for k, v in again.state_dict().items())  # deterministic for a seed
    assert not torch.equal(build("bemseg_reinit", 1).state_dict()["decoder.head.classifier.1.weight"],
                           theirs["decoder.head.classifier.1.weight"])  # and follows the run's seed


def test_frozen_decoder_starts_like_bemseg_and_never_trains_its_decoder():
    reference, control = build("bemseg"), build("bemseg_frozen_decoder")
    assert all(torch.equal(v, control.state_dict()[k]) for k, v in reference.state_dict().items())
    decoder = {id(p) for p in control.decoder.parameters()}
    grouped = {id(p) for group in param_groups(control, control.recipe) for p in group["params"]}
    assert decoder and not decoder & grouped
    assert grouped == {id(p) for p in control.parameters() if p.requires_grad}
    before = {k: v.clone() for k, v in control.decoder.state_dict().items()}
    control.train()
    images, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 6, (2, 64, 64))
    control(images, labels)["total"].backward()
    assert all(p.grad is None for p in control.decoder.parameters())
    assert any(p.grad is not None for p in control.image_encoder.parameters())
    moved = [k for k, v in control.decoder.state_dict().items() if not torch.equal(v, before[k])]
    assert moved and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in moved)
