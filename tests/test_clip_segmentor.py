"""CLIP family details the shared model tester does not reach: BFF's shared decoder and the attention pool's
position table resized at run time."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import bemseg
from bemseg.models.clip_image_encoder import ClipImageEncoder, resize_position_table


def build(**options):
    torch.manual_seed(0)
    return bemseg.create_model("bemseg", 3, **options)


def test_shared_decoder_runs_one_decoder_in_both_directions():
    two, one = build(), build(shared_decoder=True)
    assert len(two.fusion.decoders) == 2 and len(one.fusion.decoders) == 1
    decoder_params = sum(p.numel() for p in two.fusion.decoders[0].parameters())
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    assert count(two) - count(one) == decoder_params  # about 3.95 M: the public release's ~50.2 M reading
    assert round(decoder_params / 1e6, 2) == 3.95
    calls = []
    one.fusion.decoders[0].register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    one.eval()(torch.randn(1, 3, 64, 64))
    # image branch: 2x2 local tokens attend to 3 texts; text branch: 3 texts attend to [g; 4 tokens]
    assert [tuple(shape) for shape in calls] == [(1, 4, 1024), (1, 3, 1024)]
    one.train()
    images, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 3, (2, 64, 64))
    one(images, labels)["total"].backward()
    assert all(p.grad is not None for p in one.fusion.decoders[0].parameters())


def _bilinear_table(table: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The expected resize, written out: class row kept, the s x s grid resized bilinearly (half-pixel centres)."""
    side = int((table.shape[0] - 1) ** 0.5)
    grid = table[1:].T.reshape(1, -1, side, side)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)
    return torch.cat([table[:1], grid.reshape(-1, height * width).T])


def test_position_table_resize():
    table = torch.randn(1 + 4 * 4, 8)
    assert resize_position_table(table, 4, 4) is table
    resized = resize_position_table(table, 6, 3)
    assert resized.shape == (1 + 18, 8)
    torch.testing.assert_close(resized, _bilinear_table(table, 6, 3))
    torch.testing.assert_close(resized[0], table[0])
    # a constant grid stays constant
    flat = torch.ones(1 + 16, 8)
    torch.testing.assert_close(resize_position_table(flat, 7, 5), torch.ones(1 + 35, 8))


def test_attention_pool_resizes_its_table_for_other_input_sizes():
    torch.manual_seed(0)
    encoder = ClipImageEncoder(dense=True, train_size=64, width=8, output_dim=32).eval()
    assert encoder.attnpool.positional_embedding.shape[0] == 1 + 2 * 2
    x4 = torch.randn(1, 256, 3, 5)  # a 96x160 input's stride-32 map: not the 2x2 the table was made for
    global_embedding, local = encoder.dense_pool(x4)
    assert local.shape == (1, 32, 3, 5) and global_embedding.shape == (1, 32)
    pool = encoder.attnpool
    tokens = x4.flatten(2).transpose(1, 2)
    tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
    tokens = tokens + _bilinear_table(pool.positional_embedding.detach(), 3, 5)
    expected, _ = torch.nn.functional.multi_head_attention_forward(
        tokens.transpose(0, 1), tokens.transpose(0, 1), tokens.transpose(0, 1), 256, pool.num_heads,
        None, torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]), None, None, False, 0.0,
        pool.c_proj.weight, pool.c_proj.bias, use_separate_proj_weight=True, q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight, need_weights=False)
    expected = expected.transpose(0, 1)
    torch.testing.assert_close(global_embedding, expected[:, 0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(local, expected[:, 1:].transpose(1, 2).reshape(1, 32, 3, 5), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        logits = encoder(torch.randn(1, 3, 96, 160))
    assert logits.local_embedding.shape == (1, 32, 3, 5)
