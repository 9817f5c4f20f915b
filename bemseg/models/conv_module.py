"""The convolution blocks mmsegmentation's necks and decode heads are made of, initialised as mmcv does.

mmsegmentation 0.x builds every head from mmcv's ConvModule, whose constructor initialises its
convolution (Kaiming) and norm (1, 0); a decode head then draws its classifier `conv_seg` from
N(0, 0.01), and the FPN neck re-initialises its convolutions Xavier-uniform (its `init_cfg`).
The suite's FPN decoder, the baselines' heads and the auxiliary head all use these blocks, so
every randomly initialised module starts as in the reference.

- `conv_module`: mmcv's ConvModule as the heads use it, convolution without bias + BatchNorm + ReLU,
  padded to keep the size; weights Kaiming-normal (fan_out, ReLU), BatchNorm at 1 and 0.
- `separable_conv_module`: mmcv's DepthwiseSeparableConvModule, a depthwise 3x3 ConvModule (with
  its own BatchNorm and ReLU) followed by a pointwise 1x1 ConvModule.
- `classifier`: a decode head's `cls_seg`, Dropout2d then a 1x1 convolution with bias to the
  classes, weights normal with std 0.01.
- `xavier_conv`: an FPN neck convolution (mmcv ConvModule without norm and activation, so with a
  bias), Xavier-uniform weights and zero bias.
"""

from __future__ import annotations

from torch import nn


def conv_module(in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
                groups: int = 1) -> nn.Sequential:
    """Convolution (no bias, size-preserving padding) + BatchNorm + ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                     dilation=dilation, groups=groups, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def separable_conv_module(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    """Depthwise 3x3 ConvModule (rate `dilation`) then pointwise 1x1 ConvModule."""
    return nn.Sequential(conv_module(in_channels, in_channels, 3, dilation, groups=in_channels),
                         conv_module(in_channels, out_channels))


def xavier_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """Size-preserving convolution with bias, Xavier-uniform weights (gain 1) and zero bias."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def classifier(channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout2d + 1x1 convolution to the class logits."""
    conv = nn.Conv2d(channels, num_classes, 1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(nn.Dropout2d(dropout), conv)
